-- 0008: who owns what, now that several gantry processes on several
-- machines may share one database (PostgreSQL, see docs/postgres.md).
-- A run records the host of the process that runs it and the directory of
-- its liveness lock (STATE_DIR/locks), so that recovery on this host probes
-- the right lock and leaves other machines' runs alone; a process group
-- records its host, so that no machine signals another's process ids.
-- '' (rows written before 0008) means the host that opens the store.
-- This file has a PostgreSQL variant, 0008_run_owners.postgres.sql.

ALTER TABLE runs ADD COLUMN owner_host TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lock_dir   TEXT NOT NULL DEFAULT '';
ALTER TABLE proc_groups ADD COLUMN host TEXT NOT NULL DEFAULT '';
