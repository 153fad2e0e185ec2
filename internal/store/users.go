package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrExists is returned (wrapped, naming what) when a user or token to
// be created already exists.
var ErrExists = errors.New("already exists")

// User is a local user of the server. The store keeps the role as text
// and the password as the hash it is given; package auth decides what
// they mean.
type User struct {
	Name string
	Role string
	// PasswordHash is the encoded hash of the password (an argon2id PHC
	// string); empty: the user cannot log in with a password.
	PasswordHash     string
	Created, Updated time.Time
}

// APIToken is an API token of a user. The token itself is never stored,
// only Hash (hex SHA-256 of it).
type APIToken struct {
	ID    string
	User  string
	Label string
	Hash  string
	// Location binds a probe agent's token to the monitor location it
	// reports for ("" : an ordinary token).
	Location string
	// Created, Expires (zero: never), LastUsed and Revoked (zero: not
	// revoked).
	Created, Expires, LastUsed, Revoked time.Time
}

// Session is a login session. The session id itself is never stored,
// only Hash (hex SHA-256 of it).
type Session struct {
	Hash string
	User string
	// Method is how the user logged in (password, oidc).
	Method string
	// Role is the role of an OIDC session (from its claims); empty for
	// a local user, whose role is read from users at each request.
	Role              string
	Created, LastSeen time.Time
	// Expires is the absolute expiry.
	Expires time.Time
}

// AddUser records a new user and sets its times; a user of that name
// gives ErrExists.
func (s *Store) AddUser(ctx context.Context, u *User) error {
	if u.Name == "" || u.Role == "" {
		return errors.New("add user: empty name or role")
	}
	now := s.now().UTC()
	return s.withTx(ctx, "add user "+u.Name, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, role, password, created, updated) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, u.Name, u.Role, u.PasswordHash, toNanos(now), toNanos(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("user %s: %w", u.Name, ErrExists)
		}
		u.Created, u.Updated = now, now
		return nil
	})
}

// User returns the user called name (ErrNotFound when none).
func (s *Store) User(ctx context.Context, name string) (User, error) {
	var (
		u                User
		created, updated int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT name, role, password, created, updated FROM users WHERE name = ?`, name).
		Scan(&u.Name, &u.Role, &u.PasswordHash, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %s: %w", name, err)
	}
	u.Created, u.Updated = fromNanos(created), fromNanos(updated)
	return u, nil
}

// Users returns every user, by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, role, password, created, updated FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var (
			u                User
			created, updated int64
		)
		if err := rows.Scan(&u.Name, &u.Role, &u.PasswordHash, &created, &updated); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.Created, u.Updated = fromNanos(created), fromNanos(updated)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// SetUserRole changes name's role.
func (s *Store) SetUserRole(ctx context.Context, name, role string) error {
	return s.updateUser(ctx, "set the role of "+name, name, `UPDATE users SET role = ?, updated = ? WHERE name = ?`, role)
}

// SetUserPassword replaces name's password hash and ends its sessions:
// a changed password logs out every browser that knew the old one.
func (s *Store) SetUserPassword(ctx context.Context, name, hash string) error {
	return s.updateUser(ctx, "set the password of "+name, name, `UPDATE users SET password = ?, updated = ? WHERE name = ?`, hash,
		`DELETE FROM sessions WHERE user_name = ?`)
}

func (s *Store) updateUser(ctx context.Context, what, name, q, v string, then ...string) error {
	return s.withTx(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, v, toNanos(s.now()), name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("user %s: %w", name, ErrNotFound)
		}
		for _, q := range then {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveUser deletes name with its tokens and sessions.
func (s *Store) RemoveUser(ctx context.Context, name string) error {
	return s.withTx(ctx, "remove user "+name, func(tx *sql.Tx) error {
		// Tokens and sessions go explicitly: foreign keys may be off.
		for _, q := range []string{`DELETE FROM api_tokens WHERE user_name = ?`, `DELETE FROM sessions WHERE user_name = ?`} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("user %s: %w", name, ErrNotFound)
		}
		return nil
	})
}

// AddToken records t (ID, User and Hash set by the caller) and sets
// t.Created. An unknown user gives ErrNotFound; a taken ID or hash
// ErrExists.
func (s *Store) AddToken(ctx context.Context, t *APIToken) error {
	if t.ID == "" || t.Hash == "" || t.User == "" {
		return errors.New("add token: empty id, hash or user")
	}
	now := s.now().UTC()
	return s.withTx(ctx, "add a token for "+t.User, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = ?`, t.User).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("user %s: %w", t.User, ErrNotFound)
		case err != nil:
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (id, user_name, label, hash, created, expires, location) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, t.ID, t.User, t.Label, t.Hash, toNanos(now), toNanos(t.Expires), t.Location)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("token %s: %w", t.ID, ErrExists)
		}
		t.Created = now
		return nil
	})
}

const tokenColumns = `id, user_name, label, hash, created, expires, last_used, revoked, location`

func scanToken(sc interface{ Scan(...any) error }) (APIToken, error) {
	var (
		t                               APIToken
		created, expires, used, revoked int64
	)
	if err := sc.Scan(&t.ID, &t.User, &t.Label, &t.Hash, &created, &expires, &used, &revoked, &t.Location); err != nil {
		return APIToken{}, err
	}
	t.Created, t.Expires, t.LastUsed, t.Revoked = fromNanos(created), fromNanos(expires), fromNanos(used), fromNanos(revoked)
	return t, nil
}

// TokenByHash returns the token whose hash is hash, revoked or expired
// ones included (the caller decides); ErrNotFound when none.
func (s *Store) TokenByHash(ctx context.Context, hash string) (APIToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

// Tokens returns the tokens of user (every user's when empty), oldest
// first.
func (s *Store) Tokens(ctx context.Context, user string) ([]APIToken, error) {
	q := `SELECT ` + tokenColumns + ` FROM api_tokens`
	var args []any
	if user != "" {
		q += ` WHERE user_name = ?`
		args = append(args, user)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken marks the token id revoked (ErrNotFound when none). A
// revoked token stays listed; revoking it again changes nothing.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	return s.withTx(ctx, "revoke token "+id, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked = ? WHERE id = ? AND revoked = 0`, toNanos(s.now()), id); err != nil {
			return err
		}
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM api_tokens WHERE id = ?`, id).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("token %s: %w", id, ErrNotFound)
		case err != nil:
			return err
		}
		return nil
	})
}

// TouchToken records that the token id was used at.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	return s.withTx(ctx, "record the use of token "+id, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, toNanos(at), id)
		return err
	})
}

// AddSession records se (Hash, User, Method, Expires set by the caller;
// Created and LastSeen default to now).
func (s *Store) AddSession(ctx context.Context, se *Session) error {
	if se.Hash == "" || se.User == "" || se.Method == "" {
		return errors.New("add session: empty hash, user or method")
	}
	now := s.now().UTC()
	if se.Created.IsZero() {
		se.Created = now
	}
	if se.LastSeen.IsZero() {
		se.LastSeen = se.Created
	}
	return s.withTx(ctx, "add a session for "+se.User, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, user_name, method, role, created, last_seen, expires) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			se.Hash, se.User, se.Method, se.Role, toNanos(se.Created), toNanos(se.LastSeen), toNanos(se.Expires))
		return err
	})
}

// SessionByHash returns the session whose hash is hash (ErrNotFound
// when none); the caller checks its expiry.
func (s *Store) SessionByHash(ctx context.Context, hash string) (Session, error) {
	var (
		se                     Session
		created, seen, expires int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT hash, user_name, method, role, created, last_seen, expires FROM sessions WHERE hash = ?`, hash).
		Scan(&se.Hash, &se.User, &se.Method, &se.Role, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	se.Created, se.LastSeen, se.Expires = fromNanos(created), fromNanos(seen), fromNanos(expires)
	return se, nil
}

// TouchSession records that the session hash was used at.
func (s *Store) TouchSession(ctx context.Context, hash string, at time.Time) error {
	return s.withTx(ctx, "record the use of a session", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE hash = ?`, toNanos(at), hash)
		return err
	})
}

// DeleteSession ends the session hash; an unknown one is no error.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	return s.withTx(ctx, "end a session", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
		return err
	})
}

// DeleteExpiredSessions deletes the sessions whose absolute expiry or
// idle limit (last seen before idleBefore) has passed at now, and
// returns how many went.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	var n int64
	err := s.withTx(ctx, "delete expired sessions", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ? OR last_seen < ?`, toNanos(now), toNanos(idleBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
