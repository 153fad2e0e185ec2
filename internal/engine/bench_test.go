package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/step"
)

type noopStep struct{}

func (noopStep) Run(context.Context, *step.Env) (*step.Result, error) {
	return &step.Result{Outputs: map[string]any{"ok": true}}, nil
}

func (noopStep) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	return step.CacheKey{Files: []string{}}, nil
}

var noopKind = step.Kind{Name: "noop", Outputs: []string{"ok"}, New: func(step.Inputs) (step.Step, error) { return noopStep{}, nil }}

func benchPipeline(n int) string {
	var b strings.Builder
	b.WriteString("name: bench\nstages:\n  - name: s\n    steps:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - {name: s%d, uses: noop}\n", i)
	}
	return b.String()
}

// BenchmarkNoopStep measures the engine's own cost per step: recording,
// logging, scheduling and expression environments, with a step that does
// nothing. Reported per step.
func BenchmarkNoopStep(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "run"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			const steps = 50
			f := newFixture(b, engine.WithKinds([]step.Kind{noopKind}))
			p := f.pipeline(benchPipeline(steps))
			ctx := context.Background()
			req := engine.Request{Dir: f.dir, Git: step.Git{Event: "push", Branch: "main"}, NoCache: !cached}
			if _, err := f.eng.Run(ctx, p, req); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := f.eng.Run(ctx, p, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*steps)/1e3, "µs/step")
		})
	}
}
