package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/stdlib"
)

// pgConnector hands database/sql connections of pgx's stdlib driver whose
// queries have their ? placeholders rewritten as $n (rebind), so that the
// store's queries, and those of code written against Store's database
// handles, run unchanged on PostgreSQL.
type pgConnector struct {
	inner driver.Connector
}

var _ driver.Connector = pgConnector{}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, errUnexpectedConn
	}
	return &pgConn{c: pc}, nil
}

func (c pgConnector) Driver() driver.Driver { return c.inner.Driver() }

var errUnexpectedConn = errors.New("postgres: pgx's stdlib driver returned an unexpected connection type")

// pgConn is a pgx stdlib connection that rebinds placeholders. It has every
// optional ability the stdlib connection has, so database/sql treats it
// alike.
type pgConn struct {
	c *stdlib.Conn
}

var (
	_ driver.Conn               = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
)

func (p *pgConn) Prepare(query string) (driver.Stmt, error) { return p.c.Prepare(rebind(query)) }

func (p *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return p.c.PrepareContext(ctx, rebind(query))
}

func (p *pgConn) Close() error { return p.c.Close() }

//nolint:staticcheck // driver.Conn requires Begin; BeginTx is what database/sql uses
func (p *pgConn) Begin() (driver.Tx, error) { return p.c.Begin() }

func (p *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return p.c.BeginTx(ctx, opts)
}

func (p *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return p.c.ExecContext(ctx, rebind(query), args)
}

func (p *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return p.c.QueryContext(ctx, rebind(query), args)
}

func (p *pgConn) Ping(ctx context.Context) error { return p.c.Ping(ctx) }

// CheckNamedValue also makes every string argument storable as TEXT,
// which PostgreSQL refuses to hold NUL bytes or invalid UTF-8 in (SQLite
// keeps any bytes): each NUL and each invalid byte sequence becomes
// U+FFFD. Columns that must keep any bytes (log lines) are BYTEA and get
// []byte arguments, which pass unchanged.
func (p *pgConn) CheckNamedValue(v *driver.NamedValue) error {
	if s, ok := v.Value.(string); ok {
		v.Value = storableText(s)
	}
	return p.c.CheckNamedValue(v)
}

// storableText is s with NUL bytes and invalid UTF-8 replaced by U+FFFD.
func storableText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (p *pgConn) ResetSession(ctx context.Context) error { return p.c.ResetSession(ctx) }
