package store

import (
	"context"
	"fmt"
	"strings"
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

// TestStepLogPage: a large step log read page by page returns each line
// once, in Seq order, with no line of another step, and says when more
// follow; a page starts after any line number.
func TestStepLogPage(t *testing.T) { eachBackend(t, testStepLogPage) }

func testStepLogPage(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{Pipeline: "p", Started: t0}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	const total, batch = 20000, 2000
	for from := 0; from < total; from += batch {
		var lines, other []LogLine
		for i := from; i < from+batch; i++ {
			lines = append(lines, LogLine{Text: fmt.Sprintf("line %d", i+1)})
		}
		other = append(other, LogLine{Text: "another step"})
		if err := s.AppendLogs(ctx, r.ID, "build", "unit", lines); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendLogs(ctx, r.ID, "build", "lint", other); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 700, total, total + 1} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var after int64
			pages, seen := 0, 0
			for {
				lines, more, err := s.StepLogPage(ctx, r.ID, "build", "unit", after, limit)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(lines) > limit {
					t.Fatalf("page %d: got %d lines, want at most %d", pages, len(lines), limit)
				}
				for _, l := range lines {
					seen++
					if l.Seq != int64(seen) || l.Text != fmt.Sprintf("line %d", seen) || l.Stage != "build" || l.Step != "unit" {
						t.Fatalf("line %d: got %+v", seen, l)
					}
				}
				if !more {
					break
				}
				if len(lines) == 0 {
					t.Fatalf("page %d: no lines, yet more follow", pages)
				}
				after = lines[len(lines)-1].Seq
				if limit == 1 && pages == 50 {
					// Enough to show one-line pages; jump near the end.
					after, seen = total-3, total-3
				}
			}
			if seen != total {
				t.Errorf("got %d lines, want %d", seen, total)
			}
			if want := (total + limit - 1) / limit; limit > 1 && pages != want {
				t.Errorf("pages: got %d, want %d", pages, want)
			}
		})
	}
	lines, more, err := s.StepLogPage(ctx, r.ID, "build", "unit", total, 10)
	if err != nil || len(lines) != 0 || more {
		t.Errorf("after the last line: got %d lines, more %v, %v; want none", len(lines), more, err)
	}
	for _, bad := range []int{0, -1} {
		if _, _, err := s.StepLogPage(ctx, r.ID, "build", "unit", 0, bad); err == nil {
			t.Errorf("limit %d: no error", bad)
		}
	}
}

// TestStepLogPageUsesIndex (SQLite's planner): a page is a range of the
// primary key, so it costs its lines, not the step's whole log.
func TestStepLogPageUsesIndex(t *testing.T) {
	s := openTest(t, t.TempDir())
	rows, err := s.r.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+stepLogPageQuery, 1, "build", "unit", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if p := plan.String(); !strings.Contains(p, "seq>?") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("a page of a step's log is not a range of the primary key:\n%s", p)
	}
}

// TestLogsAfterLimit: a follower reading a long log in batches gets every
// line once, in append order, across steps, a batch at a time.
func TestLogsAfterLimit(t *testing.T) { eachBackend(t, testLogsAfterLimit) }

func testLogsAfterLimit(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{Pipeline: "p", Started: t0}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		step := []string{"x", "y"}[i%2]
		var lines []LogLine
		for j := range 300 {
			text := fmt.Sprintf("%s %d", step, i*300+j)
			lines = append(lines, LogLine{Text: text})
			want = append(want, text)
		}
		if err := s.AppendLogs(ctx, r.ID, "a", step, lines); err != nil {
			t.Fatal(err)
		}
	}
	const limit = 400
	var got []string
	var cursor int64
	for batches := 1; ; batches++ {
		lines, next, err := s.LogsAfterLimit(ctx, r.ID, "", "", cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) > limit {
			t.Fatalf("batch %d: got %d lines, want at most %d", batches, len(lines), limit)
		}
		for _, l := range lines {
			got = append(got, l.Text)
		}
		cursor = next
		if len(lines) < limit {
			if want := (len(want) + limit) / limit; batches != want {
				t.Errorf("batches: got %d, want %d", batches, want)
			}
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines: got %d, want %d in append order", len(got), len(want))
	}
	if _, _, err := s.LogsAfterLimit(ctx, r.ID, "", "", 0, -1); err == nil {
		t.Error("limit -1: no error")
	}
}
