package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
