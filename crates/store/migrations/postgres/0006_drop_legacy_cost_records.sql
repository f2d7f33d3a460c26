-- The row table of the first releases was converted into segments on open; no released
-- database still holds one, so the table and its conversion are gone.
DROP TABLE IF EXISTS legacy_cost_records;
