package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/store"
)

// app holds what most commands open: the state dir, the store and the
// artifact store.
type app struct {
	stateDir  string
	store     *store.Store
	artifacts *artifact.Store
	log       *slog.Logger
}

func newLogger(g *options.Global, w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if g.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func openApp(ctx context.Context, g *options.Global, stderr io.Writer) (*app, error) {
	dir, err := g.ResolveStateDir()
	if err != nil {
		return nil, err
	}
	storeURL, err := resolveStore(g)
	if err != nil {
		return nil, err
	}
	log := newLogger(g, stderr)
	st, err := store.Open(ctx, dir, store.WithLogger(log), store.WithURL(storeURL))
	if errors.Is(err, store.ErrDamaged) && storeURL != "" {
		return nil, &ExitError{Code: ExitDamaged, Err: fmt.Errorf("%w\n"+
			"gantry left the database untouched. Restore it from a backup, or give --store another database.", err)}
	}
	if errors.Is(err, store.ErrDamaged) {
		return nil, &ExitError{Code: ExitDamaged, Err: fmt.Errorf("%w\n"+
			"gantry left the file untouched. Keep it for inspection and start a new history with\n"+
			"  mv %s %s.damaged\n"+
			"or use another --state-dir.", err, filepath.Join(dir, "gantry.db"), filepath.Join(dir, "gantry.db"))}
	}
	if err != nil {
		return nil, fmt.Errorf("open run history: %w", err)
	}
	arts, err := artifact.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	return &app{stateDir: dir, store: st, artifacts: arts, log: log}, nil
}

// resolveStore returns the run history's database URL (--store, else
// $GANTRY_STORE; "" for SQLite), refusing one gantry cannot use as a usage
// error that never shows the password.
func resolveStore(g *options.Global) (string, error) {
	u, err := g.ResolveStore()
	if err != nil {
		return "", usageErr(err)
	}
	if err := store.CheckURL(u); err != nil {
		return "", usageErr(err)
	}
	return u, nil
}

func (a *app) Close() error { return a.store.Close() }

// registry is what pipeline files may refer to, for commands that only
// validate.
func registryEngine(a *app, opts ...engine.Option) (*engine.Engine, error) {
	base := []engine.Option{
		engine.WithKinds(kinds()),
		engine.WithScriptKind(builtin.Script()),
		engine.WithServices(builtin.Services()),
		engine.WithLogger(a.log),
		engine.WithVersion(version()),
	}
	return engine.New(a.store, a.artifacts, a.stateDir, append(base, opts...)...)
}

// isTerminal reports whether f is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
