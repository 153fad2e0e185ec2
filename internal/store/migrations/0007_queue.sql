-- 0007 belongs to the hooks engineer (webhook deliveries, run queue). This
-- placeholder keeps the versions without gaps on the pg branch; at merge,
-- take hooks' 0007_queue.sql and drop this one.
SELECT 1;
