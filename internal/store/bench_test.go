package store

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAppendLogs measures one 100-line batch, the engine's usual
// flush.
func BenchmarkAppendLogs(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := &Run{}
	if err := s.CreateRun(ctx, r); err != nil {
		b.Fatal(err)
	}
	lines := make([]LogLine, 100)
	for i := range lines {
		lines[i].Text = fmt.Sprintf("=== RUN   TestSomething/case_%d --- PASS (0.00s)", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AppendLogs(ctx, r.ID, "build-test", "unit", lines); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutStep measures one step status update.
func BenchmarkPutStep(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := &Run{}
	if err := s.CreateRun(ctx, r); err != nil {
		b.Fatal(err)
	}
	st := &Step{RunID: r.ID, Stage: "build-test", Name: "unit", Kind: "go-test", Status: StatusRunning,
		Outputs: map[string]any{"coverage": 83.5}}
	b.ReportAllocs()
	for b.Loop() {
		st.Attempt++
		if err := s.PutStep(ctx, st); err != nil {
			b.Fatal(err)
		}
	}
}
