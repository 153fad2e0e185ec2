package store

import (
	"context"
	"fmt"
	"testing"
)

// TestLogsAfter: following a run's log with the cursor returns each line
// once, in append order, across steps, and never re-reads old lines.
func TestLogsAfter(t *testing.T) { eachBackend(t, testLogsAfter) }

func testLogsAfter(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{Pipeline: "p", Started: t0}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	appendN := func(stage, step string, from, n int) {
		t.Helper()
		var lines []LogLine
		for i := from; i < from+n; i++ {
			lines = append(lines, LogLine{Text: fmt.Sprintf("%s/%s %d", stage, step, i)})
		}
		if err := s.AppendLogs(ctx, r.ID, stage, step, lines); err != nil {
			t.Fatal(err)
		}
	}
	var cursor int64
	read := func() []string {
		t.Helper()
		lines, next, err := s.LogsAfter(ctx, r.ID, "", "", cursor)
		if err != nil {
			t.Fatal(err)
		}
		cursor = next
		var out []string
		for _, l := range lines {
			out = append(out, l.Text)
		}
		return out
	}
	appendN("a", "x", 0, 2)
	appendN("b", "y", 0, 1)
	if got, want := fmt.Sprint(read()), "[a/x 0 a/x 1 b/y 0]"; got != want {
		t.Errorf("first read: got %s, want %s", got, want)
	}
	if got := read(); len(got) != 0 {
		t.Errorf("read with nothing new: got %v, want nothing", got)
	}
	appendN("a", "x", 2, 1)
	if got, want := fmt.Sprint(read()), "[a/x 2]"; got != want {
		t.Errorf("after one more line: got %s, want %s", got, want)
	}
	lines, _, err := s.LogsAfter(ctx, r.ID, "a", "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(lines), 3; got != want || lines[2].Seq != 3 || lines[2].Stage != "a" {
		t.Errorf("one step's lines: got %d (%+v), want %d ending with seq 3", got, lines, want)
	}
	// Each line's cursor resumes right after it.
	rest, _, err := s.LogsAfter(ctx, r.ID, "a", "x", lines[0].Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rest), 2; got != want || rest[0].Text != "a/x 1" {
		t.Errorf("after the first line's cursor: got %d lines (%+v), want %d starting with a/x 1", got, rest, want)
	}
}
