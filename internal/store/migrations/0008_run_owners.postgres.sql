-- 0008 on PostgreSQL: 0008_run_owners.sql; the column that numbers log
-- lines in the order they were appended (the cursor of `gantry logs -f`),
-- which SQLite has as every table's rowid; and log text as BYTEA, since a
-- step's output may hold any bytes and PostgreSQL's TEXT refuses NUL and
-- invalid UTF-8 (SQLite's TEXT keeps them).

ALTER TABLE runs ADD COLUMN owner_host TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lock_dir   TEXT NOT NULL DEFAULT '';
ALTER TABLE proc_groups ADD COLUMN host TEXT NOT NULL DEFAULT '';

ALTER TABLE logs ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX logs_run_id ON logs (run_id, id);

ALTER TABLE logs ALTER COLUMN text TYPE BYTEA USING convert_to(text, 'UTF8');
