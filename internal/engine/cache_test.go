package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// genPipeline: gen writes gen.txt; use, keyed on gen.txt, reads it. What
// is listed or digested before gen runs (by gen's own key, or by the seed
// stage's) must not stand for gen.txt in use's key.
func genPipeline(content string) string {
	return `name: gen
stages:
  - name: seed
    steps:
      - {name: seed, run: "true", inputs: ["**"]}
  - name: build
    steps:
      - name: gen
        run: printf ` + content + ` > gen.txt
        inputs: [gen.txt]
      - name: use
        needs: [gen]
        run: echo "content=$(cat gen.txt)" >> "$GANTRY_OUTPUT"
        inputs: [gen.txt]
`
}

// TestCacheKeySeesGeneratedFiles: a step's key is computed when it is
// about to run, from the files as earlier steps of the same run left them.
func TestCacheKeySeesGeneratedFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before the first run: gen.txt holds "one" (changed) or does
		// not exist (created by the step each run)
		initial bool
	}{
		{name: "file changed by an earlier step", initial: true},
		{name: "file created by an earlier step", initial: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.initial {
				f.write("gen.txt", "one")
			}
			ctx := context.Background()
			first := f.run(ctx, f.pipeline(genPipeline("one")), engine.Request{})
			if got := f.steps(first.RunID)["build/use"]; got.Status != store.StatusPassed || got.Outputs["content"] != "one" {
				t.Fatalf("first run: use got %s with %v, want passed with content one", got.Status, got.Outputs)
			}
			if !tc.initial {
				if err := os.Remove(filepath.Join(f.dir, "gen.txt")); err != nil {
					t.Fatal(err)
				}
			}
			second := f.run(ctx, f.pipeline(genPipeline("two")), engine.Request{})
			got := f.steps(second.RunID)["build/use"]
			if got.Status != store.StatusPassed || got.Outputs["content"] != "two" {
				t.Errorf("second run: use got %s (cached from run %d) with %v, want passed with content two", got.Status, got.CachedFrom, got.Outputs)
			}
			// Same generated content again: now the cache may hit.
			third := f.run(ctx, f.pipeline(genPipeline("two")), engine.Request{})
			if got := f.steps(third.RunID)["build/use"]; got.Status != store.StatusCached || got.Outputs["content"] != "two" {
				t.Errorf("third run: use got %s with %v, want cached with content two", got.Status, got.Outputs)
			}
		})
	}
}
