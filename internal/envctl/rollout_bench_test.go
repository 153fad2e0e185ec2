package envctl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// pacedLoad sends GETs to url at a fixed rate, each on its own goroutine,
// and keeps every answer with the time its request was sent.
type pacedLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	answers []answer
}

type answer struct {
	sent time.Time
	body string // the version that answered, or "error: ..." / the status
}

func startPaced(url string, rps int) *pacedLoad {
	l := &pacedLoad{stop: make(chan struct{})}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	l.wg.Go(func() {
		t := time.NewTicker(time.Second / time.Duration(rps))
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			l.wg.Go(func() {
				sent := time.Now()
				got := "error"
				resp, err := c.Get(url)
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case rerr != nil:
						got = "error: " + rerr.Error()
					case resp.StatusCode != 200:
						got = strconv.Itoa(resp.StatusCode)
					default:
						got = strings.TrimSpace(string(b))
					}
				} else {
					got = "error: " + err.Error()
				}
				l.mu.Lock()
				l.answers = append(l.answers, answer{sent, got})
				l.mu.Unlock()
			})
		}
	})
	return l
}

// take returns the answers so far and forgets them.
func (l *pacedLoad) take() []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.answers
	l.answers = nil
	return a
}

func (l *pacedLoad) close() {
	close(l.stop)
	l.wg.Wait()
}

// failed counts the answers that are not a version.
func failed(as []answer) int {
	n := 0
	for _, a := range as {
		if !strings.HasPrefix(a.body, "v") {
			n++
		}
	}
	return n
}

func (f *fixture) waitStep(ctx context.Context, env string, step runtime.RolloutStep) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last runtime.RolloutStatus
	err := f.ctl.Watch(ctx, env, func(st runtime.RolloutStatus) bool {
		last = st
		return st.Step != step
	})
	if err != nil {
		return fmt.Errorf("waiting for step %s: %w (last: step %s, phase %s, %q)", step, err, last.Step, last.Phase, last.Message)
	}
	return nil
}

// BenchmarkRolloutPromoteAbort measures, under 200 requests a second on
// the active URL, one promotion and one abort per iteration: the requests
// that failed across them, and the rollback time — from the abort being
// issued until the last request that green answered on the active URL was
// sent (all later ones went to blue), or until Abort returned if that is
// later. Before the abort, all active traffic goes to green (preview
// traffic 100%), so the abort has everything to move.
//
//	go test -run '^$' -bench RolloutPromoteAbort -benchtime 10x ./internal/envctl/
func BenchmarkRolloutPromoteAbort(b *testing.B) {
	f := newFixture(b)
	f.run()
	ctx := context.Background()
	first, err := f.rollout("prod", runtime.BlueGreen{}, f.workload("v1", 1, ""))
	if err != nil {
		b.Fatal(err)
	}
	load := startPaced(first.ActiveURL, 200)
	defer load.close()
	var rollbacks []time.Duration
	promoteFailed, abortFailed, sent := 0, 0, 0
	i := 1
	for b.Loop() {
		// A promotion: green paused beside blue with half the active
		// traffic, then promoted; blue stops at once after the switch.
		promoted := fmt.Sprintf("v%d", i%9+1)
		i++
		if _, err := f.rollout("prod", runtime.BlueGreen{
			PreviewTraffic: &runtime.TrafficSplit{Percent: 50}, ScaleDownDelaySeconds: intp(0),
		}, f.workload(promoted, 1, "")); err != nil {
			b.Fatal(err)
		}
		if err := f.waitStep(ctx, "prod", runtime.StepPaused); err != nil {
			b.Fatal(err)
		}
		if _, err := f.ctl.Promote(ctx, "prod", false, "bench"); err != nil {
			b.Fatal(err)
		}
		if err := f.waitStep(ctx, "prod", runtime.StepCompleted); err != nil {
			b.Fatal(err)
		}
		as := load.take()
		promoteFailed += failed(as)
		sent += len(as)

		// An abort: green takes all active traffic, then is aborted.
		aborted := fmt.Sprintf("v%d", i%9+1)
		i++
		if _, err := f.rollout("prod", runtime.BlueGreen{
			PreviewTraffic: &runtime.TrafficSplit{Percent: 100}, AbortScaleDownDelaySeconds: intp(1),
		}, f.workload(aborted, 1, "")); err != nil {
			b.Fatal(err)
		}
		if err := f.waitStep(ctx, "prod", runtime.StepPaused); err != nil {
			b.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // green serves the active URL for a while
		issued := time.Now()
		if _, err := f.ctl.Abort(ctx, "prod", "bench", "bench"); err != nil {
			b.Fatal(err)
		}
		rollback := time.Since(issued)
		time.Sleep(500 * time.Millisecond) // requests sent around the abort come back
		as = load.take()
		abortFailed += failed(as)
		sent += len(as)
		for _, a := range as {
			if a.body == aborted && a.sent.Sub(issued) > rollback {
				rollback = a.sent.Sub(issued)
			}
		}
		rollbacks = append(rollbacks, rollback)
	}
	b.StopTimer()
	slices.Sort(rollbacks)
	b.ReportMetric(float64(rollbacks[len(rollbacks)/2].Microseconds())/1000, "rollback-ms-p50")
	b.ReportMetric(float64(rollbacks[len(rollbacks)-1].Microseconds())/1000, "rollback-ms-max")
	b.ReportMetric(float64(promoteFailed), "failed-promote")
	b.ReportMetric(float64(abortFailed), "failed-abort")
	b.ReportMetric(float64(sent), "requests")
}
