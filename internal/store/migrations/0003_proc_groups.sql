-- 0003: the process groups of running steps and services, recorded while
-- they run so that the groups a killed gantry left behind can be ended
-- when the store is next opened. A group is known by its id, its leader's
-- start time (clock ticks after boot) and the kernel's boot id, so that a
-- reused group id is never signalled.

CREATE TABLE proc_groups (
	run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	stage        TEXT    NOT NULL,
	step         TEXT    NOT NULL,
	pgid         INTEGER NOT NULL,
	leader_start INTEGER NOT NULL,
	boot         TEXT    NOT NULL,
	started      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, pgid, leader_start, boot)
);
