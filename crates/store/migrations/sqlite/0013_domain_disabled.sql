-- A system admin can disable a domain (tenant): its tokens are refused and its scheduled
-- syncs skipped until it is enabled again; its data is kept.
ALTER TABLE domains ADD COLUMN disabled_at TEXT;
