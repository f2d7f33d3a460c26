-- The partition format of each segment: 2 for segments written before the column directory
-- (CBP2, converted when the store opens), 3 for the current one (CBP3).
ALTER TABLE cost_segments ADD COLUMN format SMALLINT NOT NULL DEFAULT 2;
