package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestStepLogCap: a step writing past the log limit keeps running to its
// end; its stored log stops at the limit and ends with a marker saying
// how much was dropped.
func TestStepLogCap(t *testing.T) {
	const limit = 4 << 10
	f := newFixture(t, engine.WithStepLogLimit(limit))
	p := f.pipeline(`name: demo
stages:
  - name: s
    steps:
      - name: chatty
        run: |
          i=0
          while [ $i -lt 2000 ]; do echo "line $i of output"; i=$((i+1)); done
          echo finished > done.txt
`)
	res := f.run(context.Background(), p, engine.Request{})
	if got, want := f.steps(res.RunID)["s/chatty"].Status, store.StatusPassed; got != want {
		t.Fatalf("step status: got %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "done.txt")); err != nil {
		t.Errorf("the step did not run to its end: %v", err)
	}
	lines, err := f.store.Logs(context.Background(), res.RunID, "s", "chatty", 0)
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	for _, l := range lines {
		if l.Stream == "out" {
			stored += len(l.Text) + 1
		}
	}
	if stored > limit {
		t.Errorf("stored %d bytes of output, want at most the %d byte limit", stored, limit)
	}
	if stored < limit/2 {
		t.Errorf("stored %d bytes of output, want the log kept up to near the %d byte limit", stored, limit)
	}
	last := lines[len(lines)-1]
	// 2000 lines "line N of output\n": 10*17 + 90*18 + 900*19 + 1000*20 bytes.
	total := 10*17 + 90*18 + 900*19 + 1000*20
	want := "log truncated: dropped " + strconv.Itoa(total-stored) + " bytes"
	if last.Stream != "sys" || !strings.Contains(last.Text, want) {
		t.Errorf("last line %q (%s): want a sys marker containing %q", last.Text, last.Stream, want)
	}
}
