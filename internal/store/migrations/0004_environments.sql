-- 0004: environments (staging, prod, ...) and their history of revisions.
-- An environment keeps the proxy port allocated on its first deploy for its
-- whole life. A revision records what it runs (the workloads and the
-- environment's spec as JSON) so that a restart of the serve process or a
-- rollback needs no repository. The desired state of an environment is its
-- newest revision in status 'serving' (or 'deploying' while a deploy runs);
-- see docs/environments.md.

CREATE TABLE environments (
	name    TEXT    PRIMARY KEY,
	port    INTEGER NOT NULL UNIQUE,
	created INTEGER NOT NULL
);

CREATE TABLE env_revisions (
	environment TEXT    NOT NULL REFERENCES environments (name) ON DELETE CASCADE,
	number      INTEGER NOT NULL,
	digest      TEXT    NOT NULL DEFAULT '',
	workloads   TEXT    NOT NULL DEFAULT '[]', -- JSON []runtime.Workload
	spec        TEXT    NOT NULL DEFAULT '{}', -- JSON runtime.EnvironmentSpec
	run_id      INTEGER NOT NULL DEFAULT 0,
	who         TEXT    NOT NULL DEFAULT '',
	reason      TEXT    NOT NULL DEFAULT '',
	status      TEXT    NOT NULL,              -- deploying, serving, superseded, failed, refused
	message     TEXT    NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	updated     INTEGER NOT NULL,
	PRIMARY KEY (environment, number)
);
