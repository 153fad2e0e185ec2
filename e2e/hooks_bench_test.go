package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/webhook"
)

// TestBenchWebhookToRunStarted measures, for DELIVERIES (default 50)
// signed push deliveries sent at once to distinct branches, the time
// from sending each to (a) its 202 answer (queued) and (b) its run's
// start as the run records it (the child gantry run created the run),
// with WORKERS (default 4) workers. For humans (bench/webhooks.sh): it
// runs only with GANTRY_BENCH=1 and asserts nothing about the times.
func TestBenchWebhookToRunStarted(t *testing.T) {
	if os.Getenv("GANTRY_BENCH") != "1" {
		t.Skip("a benchmark: GANTRY_BENCH=1 (bench/webhooks.sh)")
	}
	n := envInt(t, "DELIVERIES", 50)
	workers := envInt(t, "WORKERS", 4)
	checkout := t.TempDir()
	gitRun(t, checkout, "init", "-q", "-b", "main", ".")
	if err := os.MkdirAll(filepath.Join(checkout, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, ".gantry", "pipeline.yaml"),
		[]byte("name: tiny\non:\n  push: {branches: ['**']}\nstages:\n  - name: s\n    steps: [{name: a, run: 'true'}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, checkout, "add", ".")
	gitRun(t, checkout, "commit", "-q", "-m", "tiny")
	sha := gitRun(t, checkout, "rev-parse", "HEAD")
	origin := filepath.Join(t.TempDir(), "app.git")
	gitRun(t, checkout, "clone", "-q", "--bare", ".", origin)

	state := t.TempDir()
	st, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &queue.Fetcher{AllowLocal: true, CacheDir: filepath.Join(state, "repos")}
	q, err := queue.New(queue.Config{Store: st, StateDir: state, Gantry: gantryBin, Workers: workers, Fetcher: f, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.New(webhook.Config{Secrets: [][]byte{hooksSecret}, Repositories: []webhook.Repository{{URL: origin}},
		Deliveries: st, Queue: q, Pipelines: f, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var qwg sync.WaitGroup
	qwg.Add(1)
	go func() { defer qwg.Done(); _ = q.Run(ctx) }()
	defer func() { cancel(); qwg.Wait() }()
	srv := httptest.NewServer(h)
	defer srv.Close()

	sent := make([]time.Time, n)
	queuedAfter := make([]time.Duration, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]any{"ref": fmt.Sprintf("refs/heads/b%02d", i), "after": sha, "repository": map[string]any{"clone_url": origin}})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/github", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", i))
			req.Header.Set("X-Hub-Signature-256", "sha256="+webhook.Sign(hooksSecret, body))
			<-start
			sent[i] = time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			queuedAfter[i] = time.Since(sent[i])
			var r webhook.Response
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusAccepted {
				t.Errorf("delivery %d: %d %v", i, resp.StatusCode, err)
				return
			}
			ids[i] = r.ID
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	startedAfter := make([]time.Duration, n)
	deadline := time.Now().Add(15 * time.Minute)
	for i, id := range ids {
		for {
			it, err := st.QueueItem(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if it.RunID != 0 {
				run, err := st.GetRun(context.Background(), it.RunID)
				if err != nil {
					t.Fatal(err)
				}
				startedAfter[i] = run.Started.Sub(sent[i])
				break
			}
			if it.State.Done() || time.Now().After(deadline) {
				t.Fatalf("item %s: %s without a run (%s)", id, it.State, it.Message)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("%d concurrent deliveries, %d workers", n, workers)
	t.Logf("delivery -> queued (202):     p50 %v  p99 %v  max %v", pct(queuedAfter, 50), pct(queuedAfter, 99), pct(queuedAfter, 100))
	t.Logf("delivery -> run started:      p50 %v  p99 %v  max %v", pct(startedAfter, 50), pct(startedAfter, 99), pct(startedAfter, 100))
	first := slices.Min(startedAfter)
	t.Logf("first run started after %v (a worker's fetch + gantry run start, no queueing)", first.Round(time.Millisecond))
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1].Round(time.Millisecond)
}
