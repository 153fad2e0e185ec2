// Command app is the runtime tests' workload: an HTTP server on $PORT whose
// readiness and liveness the test toggles, that crashes on demand, and
// reports its uid, environment, cgroup memory limit and whether it can
// write files.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		// An exec probe: ready when the server's /readyz says so.
		resp, err := http.Get("http://127.0.0.1:" + os.Getenv("PORT") + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Println("check failed:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	var ready, live atomic.Bool
	ready.Store(os.Getenv("START_UNREADY") == "")
	live.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !live.Load() {
			http.Error(w, "dead", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if v := q.Get("ready"); v != "" {
			ready.Store(v == "1")
		}
		if v := q.Get("live"); v != "" {
			live.Store(v == "1")
		}
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("crashing on request")
		os.Exit(1)
	})
	mux.HandleFunc("/uid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d:%d", os.Getuid(), os.Getgid())
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(os.Environ(), "\n"))
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("path")
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			fmt.Fprintf(w, "error: %v", err)
			return
		}
		if r.URL.Query().Get("keep") == "" {
			os.Remove(p)
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/memlimit", func(w http.ResponseWriter, r *http.Request) {
		cg, _ := os.ReadFile("/proc/self/cgroup")
		for _, f := range []string{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"} {
			if b, err := os.ReadFile(f); err == nil {
				fmt.Fprintf(w, "%s", strings.TrimSpace(string(b)))
				return
			}
		}
		http.Error(w, "no memory limit file; /proc/self/cgroup:\n"+string(cg), http.StatusNotFound)
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux}
	ctx := context.Background()
	if os.Getenv("IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGTERM)
		defer stop()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Println("listening on", srv.Addr)
	select {
	case err := <-errc:
		fmt.Println("serve:", err)
		os.Exit(2)
	case <-ctx.Done():
	}
	fmt.Println("graceful shutdown")
	_ = srv.Shutdown(context.Background())
	fmt.Println("bye")
}
