-- 0009: per-pipeline concurrency of the run queue (docs/queue.md). A queue
-- item records the limit its pipeline set (on.concurrency of the default
-- branch's pipeline file when it was queued; 0: no limit); a claim skips
-- the items of a repository that already has that many items running,
-- counted in the claim's own transaction.

ALTER TABLE run_queue ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 0;
CREATE INDEX run_queue_repo ON run_queue (repo, state);
