-- 0006: the server's users, API tokens and login sessions (docs/server.md).
-- Written in the SQL SQLite and PostgreSQL share. Times are UTC Unix
-- nanoseconds, 0 for unset. Secrets are never stored: a password as its
-- argon2id hash (PHC string, parameters included), a token and a session
-- id as the hex SHA-256 of their value.

CREATE TABLE users (
	name     TEXT    PRIMARY KEY,
	role     TEXT    NOT NULL,
	password TEXT    NOT NULL DEFAULT '', -- argon2id PHC string; '' = no password login
	created  BIGINT  NOT NULL,
	updated  BIGINT  NOT NULL
);

CREATE TABLE api_tokens (
	id        TEXT    PRIMARY KEY,
	user_name TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	label     TEXT    NOT NULL DEFAULT '',
	hash      TEXT    NOT NULL UNIQUE,  -- hex SHA-256 of the token
	created   BIGINT  NOT NULL,
	expires   BIGINT  NOT NULL DEFAULT 0,
	last_used BIGINT  NOT NULL DEFAULT 0,
	revoked   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

-- A session of a local user follows its user (deleted with it); an OIDC
-- session has no row in users and carries the role its claims mapped to.
CREATE TABLE sessions (
	hash      TEXT    PRIMARY KEY,      -- hex SHA-256 of the session id
	user_name TEXT    NOT NULL,
	method    TEXT    NOT NULL,         -- password, oidc
	role      TEXT    NOT NULL DEFAULT '',
	created   BIGINT  NOT NULL,
	last_seen BIGINT  NOT NULL,
	expires   BIGINT  NOT NULL          -- absolute expiry
);
CREATE INDEX sessions_user ON sessions (user_name);
