-- 0010: API tokens bound to a probe location (docs/monitors.md). A token
-- with a location is a probe agent's: it may read the assignments of and
-- report monitor results for that location only, and nothing else; ''
-- is an ordinary token, which may not report monitors.

ALTER TABLE api_tokens ADD COLUMN location TEXT NOT NULL DEFAULT '';
