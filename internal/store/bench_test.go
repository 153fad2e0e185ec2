package store

import (
	"context"
	"fmt"
	"testing"
)

// The store's hot path, on both backends side by side
// (BenchmarkX/sqlite, BenchmarkX/postgres). The test PostgreSQL runs with
// fsync off, as SQLite's synchronous=NORMAL in WAL mode skips the fsync
// of each commit: both measure the database, not the disk.

// BenchmarkAppendLogs measures one 100-line batch, the engine's usual
// flush.
func BenchmarkAppendLogs(b *testing.B) { eachBackendB(b, benchAppendLogs) }

func benchAppendLogs(b *testing.B, be *backend) {
	ctx := context.Background()
	s := be.open(b, b.TempDir())
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
func BenchmarkPutStep(b *testing.B) { eachBackendB(b, benchPutStep) }

func benchPutStep(b *testing.B, be *backend) {
	ctx := context.Background()
	s := be.open(b, b.TempDir())
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
