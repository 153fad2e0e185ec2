-- 0002: durable runs. A run records what it runs (the pipeline file's exact
-- bytes and path, the request), so that another process can resume it;
-- approvals record their deadline and what the decider saw; the status
-- awaiting_approval is renamed waiting.

ALTER TABLE runs ADD COLUMN pipeline_file TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN pipeline_source BLOB;      -- NULL: not recorded (runs before 0002)
ALTER TABLE runs ADD COLUMN request TEXT NOT NULL DEFAULT '{}';

ALTER TABLE approvals ADD COLUMN deadline INTEGER NOT NULL DEFAULT 0; -- 0: no timeout
ALTER TABLE approvals ADD COLUMN digest   TEXT    NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN evidence TEXT    NOT NULL DEFAULT '';  -- JSON shown to the decider

UPDATE runs   SET status = 'waiting' WHERE status = 'awaiting_approval';
UPDATE stages SET status = 'waiting' WHERE status = 'awaiting_approval';
CREATE INDEX approvals_pending ON approvals (status, deadline) WHERE status = 'pending';
