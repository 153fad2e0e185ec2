package load

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The soak-watch tests need a target whose /metrics describe only itself,
// so TestMain turns the test binary into a server process when asked.
const serverModeEnv = "GANTRY_LOAD_TEST_SERVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(serverModeEnv); mode != "" {
		serve(mode)
		return
	}
	os.Exit(m.Run())
}

// serve runs a target server: "steady" answers every request from a
// constant working set; "leak" keeps 32 KiB and one blocked goroutine per
// request; "pool" and "bigpool" serve through a semaphore pool of 4 or 64
// connections held 50 ms each, exposed as pgxpool-style metrics.
func serve(mode string) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	var mu sync.Mutex
	var kept [][]byte
	block := make(chan struct{})
	size := 4
	if mode == "bigpool" {
		size = 64
	}
	pool := make(chan struct{}, size)
	var acquired atomic.Int64
	waits := prometheus.NewCounter(prometheus.CounterOpts{Name: "testpool_empty_acquire_count", Help: "acquires that waited"})
	reg.MustRegister(waits,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "testpool_acquired_conns", Help: "acquired"}, func() float64 { return float64(acquired.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "testpool_max_conns", Help: "max"}, func() float64 { return float64(size) }),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case "leak":
			mu.Lock()
			kept = append(kept, make([]byte, 32<<10))
			mu.Unlock()
			go func() { <-block }()
		case "pool", "bigpool":
			select {
			case pool <- struct{}{}:
			default:
				waits.Inc()
				pool <- struct{}{}
			}
			acquired.Add(1)
			time.Sleep(50 * time.Millisecond)
			acquired.Add(-1)
			<-pool
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	_ = http.Serve(ln, mux)
}

// startServer starts the test binary as a server process in mode and
// returns its base URL.
func startServer(t *testing.T, mode string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverModeEnv+"="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("server %s did not start: %v", mode, err)
	}
	return "http://" + strings.TrimSpace(line)
}
