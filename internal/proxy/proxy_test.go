package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a real HTTP server that answers with its name and counts
// what it served.
type backend struct {
	name   string
	srv    *httptest.Server
	served atomic.Int64
	// header keeps the last request's headers.
	mu     sync.Mutex
	header http.Header
	host   string
}

func newBackend(t testing.TB, name string, delay time.Duration) *backend {
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			time.Sleep(delay)
		}
		b.mu.Lock()
		b.header, b.host = r.Header.Clone(), r.Host
		b.mu.Unlock()
		b.served.Add(1)
		io.WriteString(w, b.name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) backend() Backend {
	return Backend{ID: b.name, Addr: strings.TrimPrefix(b.srv.URL, "http://")}
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestNoBackend503(t *testing.T) {
	srv := httptest.NewServer(New("staging", nil))
	defer srv.Close()
	code, body := get(t, srv.Client(), srv.URL+"/")
	if code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", code)
	}
	if want := "environment staging has no ready instance"; !strings.Contains(body, want) {
		t.Errorf("body = %q, want it to say %q", body, want)
	}
}

func TestRoundRobinAndForwardedHeaders(t *testing.T) {
	a, b := newBackend(t, "a", 0), newBackend(t, "b", 0)
	p := New("staging", nil)
	p.Switch([]Backend{a.backend(), b.backend()})
	srv := httptest.NewServer(p)
	defer srv.Close()
	got := map[string]int{}
	for range 10 {
		code, body := get(t, srv.Client(), srv.URL+"/x")
		if code != 200 {
			t.Fatalf("status = %d, want 200", code)
		}
		got[body]++
	}
	if got["a"] != 5 || got["b"] != 5 {
		t.Errorf("served = %v, want 5 each", got)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if a.header.Get(h) == "" {
			t.Errorf("backend saw no %s header", h)
		}
	}
	if want := strings.TrimPrefix(srv.URL, "http://"); a.host != want || a.header.Get("X-Forwarded-Host") != want {
		t.Errorf("Host = %q, X-Forwarded-Host = %q; want %q", a.host, a.header.Get("X-Forwarded-Host"), want)
	}
}

func TestDeadBackendIsSkipped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	live := newBackend(t, "live", 0)
	p := New("staging", nil)
	p.Switch([]Backend{{ID: "dead", Addr: dead}, live.backend()})
	srv := httptest.NewServer(p)
	defer srv.Close()
	for i := range 6 {
		if code, body := get(t, srv.Client(), srv.URL+"/"); code != 200 || body != "live" {
			t.Errorf("request %d: %d %q, want 200 from live", i, code, body)
		}
	}
}

// TestSwitchUnderLoadDropsNothing keeps many clients sending requests for
// the whole test while the proxy is switched between real backend servers
// several times, each old server closed once drained, as a redeploy does.
func TestSwitchUnderLoadDropsNothing(t *testing.T) {
	p := New("staging", nil)
	if err := p.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	url := "http://" + p.Addr() + "/"

	const generations = 6
	var backends []*backend
	for i := range generations {
		backends = append(backends, newBackend(t, fmt.Sprintf("gen%d", i), time.Millisecond))
	}
	p.Switch([]Backend{backends[0].backend()})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer c.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitServed := func(b *backend, n int64) {
		for b.served.Load() < n {
			time.Sleep(time.Millisecond)
		}
	}
	for i := 1; i < generations; i++ {
		waitServed(backends[i-1], 50)
		drain := p.Switch([]Backend{backends[i].backend()})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := drain(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		backends[i-1].srv.Close() // the old instance stops once drained
	}
	waitServed(backends[generations-1], 50)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across %d switches (first: %v), want 0", n, n+ok.Load(), generations-1, firstErr.Load())
	}
	for _, b := range backends {
		if b.served.Load() == 0 {
			t.Errorf("backend %s served nothing", b.name)
		}
	}
	t.Logf("%d requests, %d switches, %d failed", ok.Load(), generations-1, failed.Load())
}

func TestListenOnTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := New("staging", nil)
	err = p.Listen(l.Addr().String())
	if err == nil {
		p.Close(context.Background())
		t.Fatal("Listen on a taken port succeeded")
	}
	for _, want := range []string{"staging", l.Addr().String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// BenchmarkOverhead measures a request through the proxy against the same
// request sent straight to the backend, alternating in one run, and
// reports both medians and their difference (the goal: under
// 100µs at p50).
func BenchmarkOverhead(b *testing.B) {
	be := newBackend(b, "be", 0)
	p := New("bench", nil)
	p.Switch([]Backend{be.backend()})
	if err := p.Listen("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	direct, proxied := be.srv.URL+"/", "http://"+p.Addr()+"/"
	one := func(url string) time.Duration {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	one(direct)
	one(proxied)
	var d, q []time.Duration
	b.ResetTimer()
	for b.Loop() {
		d = append(d, one(direct))
		q = append(q, one(proxied))
	}
	p50 := func(s []time.Duration) float64 {
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[len(s)/2].Nanoseconds()) / 1e3
	}
	pd, pq := p50(d), p50(q)
	b.ReportMetric(pd, "direct-p50-µs")
	b.ReportMetric(pq, "proxied-p50-µs")
	b.ReportMetric(pq-pd, "overhead-p50-µs")
}

// TestDrainClosesIdleConnections: once drained, the old backend holds no
// connection from the proxy, so its graceful shutdown does not wait on
// one.
func TestDrainClosesIdleConnections(t *testing.T) {
	var open atomic.Int64
	old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "old") }))
	old.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	old.Start()
	defer old.Close()
	p := New("staging", nil)
	p.Switch([]Backend{{ID: "old", Addr: strings.TrimPrefix(old.URL, "http://")}})
	srv := httptest.NewServer(p)
	defer srv.Close()
	for range 3 {
		if code, body := get(t, srv.Client(), srv.URL); code != 200 || body != "old" {
			t.Fatalf("GET = %d %q", code, body)
		}
	}
	if open.Load() == 0 {
		t.Fatal("the proxy keeps no connection to its backend: nothing to check")
	}
	if err := p.Switch(nil)(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the drained backend still open", open.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
