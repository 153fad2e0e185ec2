package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestStepLogPages: a large step log comes page by page from the store:
// without ?limit= in pages of the most a page may hold, with it in pages
// of that size; following next yields every line once, in order.
func TestStepLogPages(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	run := &store.Run{Pipeline: "p", Event: "push", Branch: "main"}
	must(t, e.st.CreateRun(ctx, run))
	must(t, e.st.PutStep(ctx, &store.Step{RunID: run.ID, Stage: "build", Name: "unit", Kind: "script", Status: store.StatusPassed}))
	const total = 3*maxLimit + 17
	lines := make([]store.LogLine, total)
	for i := range lines {
		lines[i] = store.LogLine{Text: fmt.Sprintf("line %d", i+1)}
	}
	must(t, e.st.AppendLogs(ctx, run.ID, "build", "unit", lines))
	tests := []struct {
		name, query string
		pageSize    int
	}{
		{"default", "", maxLimit},
		{"limit 200", "&limit=200", 200},
		{"limit 1 after the last but two", "&limit=1&after=" + strconv.Itoa(total-3), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := fmt.Sprintf("/api/v1/runs/%d/logs?stage=build&step=unit%s", run.ID, tt.query)
			first := total - 3
			if tt.pageSize != 1 {
				first = 0
			}
			seen, pages := first, 0
			for target != "" {
				resp, body := e.call(t, viewer, "GET", target, "")
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %s %s", target, resp.Status, body)
				}
				var page Page[runview.LogLine]
				must(t, json.Unmarshal(body, &page))
				pages++
				if len(page.Items) > tt.pageSize {
					t.Fatalf("page %d: got %d lines, want at most %d", pages, len(page.Items), tt.pageSize)
				}
				for _, l := range page.Items {
					seen++
					if l.Text != fmt.Sprintf("line %d", seen) {
						t.Fatalf("line %d: got %q", seen, l.Text)
					}
				}
				target = ""
				if page.Next != "" {
					target = fmt.Sprintf("/api/v1/runs/%d/logs?stage=build&step=unit&limit=%d&after=%s", run.ID, tt.pageSize, page.Next)
				}
			}
			if seen != total {
				t.Errorf("got lines up to %d, want up to %d", seen, total)
			}
			if want := (total - first + tt.pageSize - 1) / tt.pageSize; pages != want {
				t.Errorf("pages: got %d, want %d", pages, want)
			}
		})
	}
}

// TestRunLogPages: the whole run's log comes page by page from the
// store, in the order its lines were appended (two steps' interleaved
// here), each line once, next the cursor of the stream's event IDs.
func TestRunLogPages(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	run := &store.Run{Pipeline: "p", Event: "push", Branch: "main"}
	must(t, e.st.CreateRun(ctx, run))
	var want []string
	for _, step := range []string{"unit", "lint"} {
		must(t, e.st.PutStep(ctx, &store.Step{RunID: run.ID, Stage: "build", Name: step, Kind: "script", Status: store.StatusPassed}))
	}
	// Batches of 10 lines, the steps' batches alternating.
	for b := range (2*maxLimit + 3 + 9) / 10 {
		step := []string{"unit", "lint"}[b%2]
		batch := make([]store.LogLine, 10)
		for i := range batch {
			batch[i].Text = fmt.Sprintf("%s %d", step, 10*b+i)
			want = append(want, batch[i].Text)
		}
		must(t, e.st.AppendLogs(ctx, run.ID, "build", step, batch))
	}
	for _, pageSize := range []int{maxLimit, 7} {
		t.Run(fmt.Sprintf("limit %d", pageSize), func(t *testing.T) {
			var got []string
			target := fmt.Sprintf("/api/v1/runs/%d/logs?limit=%d", run.ID, pageSize)
			for pages := 1; target != ""; pages++ {
				resp, body := e.call(t, viewer, "GET", target, "")
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %s %s", target, resp.Status, body)
				}
				var page Page[runview.LogLine]
				must(t, json.Unmarshal(body, &page))
				if len(page.Items) > pageSize {
					t.Fatalf("page %d: %d lines, want at most %d", pages, len(page.Items), pageSize)
				}
				for _, l := range page.Items {
					got = append(got, l.Text)
				}
				target = ""
				if page.Next != "" {
					target = fmt.Sprintf("/api/v1/runs/%d/logs?limit=%d&after=%s", run.ID, pageSize, page.Next)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %d lines, want %d in the order appended; first differing at %d", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

// firstDiff is the index of the first element where a and b differ.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLogStreamOfALongLog: a step's log longer than a few of the
// stream's store batches arrives whole, each line once and in order,
// before the end event.
func TestLogStreamOfALongLog(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	r := &store.Run{Pipeline: "p", Event: "push"}
	must(t, e.st.CreateRun(ctx, r))
	must(t, e.st.PutStep(ctx, &store.Step{RunID: r.ID, Stage: "s", Name: "x", Kind: "script", Status: store.StatusPassed}))
	const total = 3*sseBatch + 5
	lines := make([]store.LogLine, total)
	for i := range lines {
		lines[i] = store.LogLine{Text: fmt.Sprintf("line %d", i+1)}
	}
	must(t, e.st.AppendLogs(ctx, r.ID, "s", "x", lines))
	srv := newTestServer(t, withIdentity(viewer, e.api.Handler()))
	events := make(chan sseEvent)
	done := make(chan error, 1)
	go func() {
		done <- readSSE(ctx, fmt.Sprintf("%s/api/v1/runs/%d/logs/stream?stage=s&step=x", srv.URL, r.ID), "", events)
	}()
	n, ended := 0, false
	for ev := range events {
		switch ev.name {
		case "line":
			var l runview.LogLine
			must(t, json.Unmarshal([]byte(ev.data), &l))
			n++
			if want := fmt.Sprintf("line %d", n); l.Text != want || ended {
				t.Fatalf("event %d: got %q (after the end: %v), want %q", n, l.Text, ended, want)
			}
		case "end":
			ended = true
		}
	}
	must(t, <-done)
	if n != total || !ended {
		t.Errorf("got %d lines (ended: %v), want %d and the end", n, ended, total)
	}
}
