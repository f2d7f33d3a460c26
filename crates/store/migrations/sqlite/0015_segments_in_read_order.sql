-- Segments are read in (month, account, seq) order within a domain (reports, exports, engine
-- loads). With an index on (domain_id, month) only, SQLite sorted each month's rows — their
-- payloads included — in a temporary B-tree: a month of 1 GB of segments took 1 GB of memory.
-- This index gives the rows in read order, so they stream one at a time.
CREATE INDEX cost_segments_read_order ON cost_segments (domain_id, month, account_id, seq);
DROP INDEX cost_segments_domain_month;
