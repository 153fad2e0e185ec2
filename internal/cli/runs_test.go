package cli

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/store"
)

// growingRun is a store whose run gains lines at every poll of the run's
// status and finishes after polls polls; it counts the log rows read.
type growingRun struct {
	*store.Store
	t         *testing.T
	id        int64
	polls     int
	perPoll   int
	appended  int
	rowsRead  int
	logsReads int
}

func (g *growingRun) add(n int) {
	var lines []store.LogLine
	for i := 0; i < n; i++ {
		lines = append(lines, store.LogLine{Text: fmt.Sprintf("line %d", g.appended)})
		g.appended++
	}
	if err := g.AppendLogs(context.Background(), g.id, "s", "x", lines); err != nil {
		g.t.Fatal(err)
	}
}

func (g *growingRun) Logs(ctx context.Context, runID int64, stage, step string, afterSeq int64) ([]store.LogLine, error) {
	lines, err := g.Store.Logs(ctx, runID, stage, step, afterSeq)
	g.rowsRead += len(lines)
	g.logsReads++
	return lines, err
}

func (g *growingRun) LogsAfter(ctx context.Context, runID int64, stage, step string, cursor int64) ([]store.LogLine, int64, error) {
	lines, next, err := g.Store.LogsAfter(ctx, runID, stage, step, cursor)
	g.rowsRead += len(lines)
	g.logsReads++
	return lines, next, err
}

func (g *growingRun) GetRun(ctx context.Context, id int64) (*store.Run, error) {
	g.polls--
	if g.polls == 0 {
		g.add(g.perPoll) // flushed just before the end
		if err := g.FinishRun(ctx, id, store.StatusPassed, "", time.Now()); err != nil {
			g.t.Fatal(err)
		}
	} else {
		g.add(g.perPoll)
	}
	return g.Store.GetRun(ctx, id)
}

// TestLogsFollowReadsOnlyNewLines: `gantry logs -f` reads each stored line
// once, however many times it polls, for one step and for the whole run.
func TestLogsFollowReadsOnlyNewLines(t *testing.T) {
	for _, tc := range []struct{ name, stage, step string }{{"whole run", "", ""}, {"one step", "s", "x"}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			r := &store.Run{Pipeline: "p", Started: time.Now()}
			if err := st.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			g := &growingRun{Store: st, t: t, id: r.ID, polls: 20, perPoll: 50}
			g.add(100)
			var out bytes.Buffer
			if err := printLogs(ctx, &out, g, r.ID, tc.stage, tc.step, true, time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if got, want := g.rowsRead, g.appended; got != want {
				t.Errorf("rows read: got %d over %d reads, want %d (each line once)", got, g.logsReads, want)
			}
			printed := strings.Split(strings.TrimSpace(out.String()), "\n")
			if got, want := len(printed), g.appended; got != want {
				t.Fatalf("printed %d lines, want %d", got, want)
			}
			if got, want := printed[len(printed)-1], fmt.Sprintf("line %d", g.appended-1); !strings.HasSuffix(got, want) {
				t.Errorf("last line %q, want it to end with %q", got, want)
			}
		})
	}
}

// seedArtifact records a finished run with one artifact in the state dir.
func seedArtifact(t *testing.T, state, name, content string) int64 {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	d, n, err := arts.Put(ctx, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	r := &store.Run{Pipeline: "p", Started: time.Now()}
	if err := st.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := st.AddArtifact(ctx, &store.Artifact{RunID: r.ID, Stage: "s", Step: "x", Name: name, Digest: d, Size: n, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, r.ID, store.StatusPassed, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// TestArtifactsGetTargets: `artifacts --get --to` writes regular files
// only, never through or over a symlink, FIFO or directory, and keeps an
// existing file's mode when --force overwrites it.
func TestArtifactsGetTargets(t *testing.T) {
	state := t.TempDir()
	id := fmt.Sprint(seedArtifact(t, state, "report.txt", "the report"))
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "exe")
	if err := os.WriteFile(exe, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		want  string
		check func(t *testing.T)
	}{
		{"fifo", []string{"--to", fifo}, 2, "not a regular file (it is a FIFO)", func(t *testing.T) { mustMode(t, fifo, os.ModeNamedPipe|0o644) }},
		{"symlink", []string{"--to", link}, 2, "is a symbolic link", func(t *testing.T) { mustMode(t, link, os.ModeSymlink|0o777) }},
		{"existing file", []string{"--to", exe}, 2, "pass --force to overwrite it", func(t *testing.T) { mustMode(t, exe, 0o755) }},
		{"existing file, forced", []string{"--to", exe, "--force"}, 0, "wrote " + exe, func(t *testing.T) {
			mustMode(t, exe, 0o755)
			if b, _ := os.ReadFile(exe); string(b) != "the report" {
				t.Errorf("content %q", b)
			}
		}},
		{"new file", []string{"--to", filepath.Join(dir, "new")}, 0, "wrote", func(t *testing.T) { mustMode(t, filepath.Join(dir, "new"), 0o644) }},
		{"into a directory", []string{"--to", dir + "/sub/"}, 1, "no such file or directory", nil},
		{"force alone", []string{"--force"}, 2, "--force goes with --get and --to", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"artifacts", id, "--get", "report.txt"}, tc.args...)
			if tc.name == "force alone" {
				args = []string{"artifacts", id, "--force"}
			}
			_, stderr, code := gantry(t, state, args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("written through the symlink: %q", b)
	}
}

func mustMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
	}
}

// TestDamagedHistoryExits3: a run history with a dropped table stops every
// command that opens it with exit 3 and a message saying what to do.
func TestDamagedHistoryExits3(t *testing.T) {
	state := t.TempDir()
	seedArtifact(t, state, "report.txt", "x")
	db := filepath.Join(state, "gantry.db")
	conn, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec("DROP TABLE steps"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	for _, args := range [][]string{{"runs"}, {"show", "1"}, {"logs", "1"}} {
		_, stderr, code := gantry(t, state, args...)
		if code != ExitDamaged || !strings.Contains(stderr, "table steps is missing") || !strings.Contains(stderr, "mv "+db) {
			t.Errorf("gantry %v: exit %d, stderr %q; want exit %d naming the problem and the way out", args, code, stderr, ExitDamaged)
		}
	}
}
