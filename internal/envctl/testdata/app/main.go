// Command app is the workload of the controller's tests: an HTTP server on
// $PORT that answers / with $VERSION, /readyz with 200 while the file
// $READY_FILE exists (503 otherwise), /env/NAME with a variable of its
// environment, /port with $PORT, /json with
// {"version": $VERSION, "ok": false when $OK is "false"}, /metrics with
// the gauge app_ok (0 when $OK is "false"), /unready makes this instance fail
// readiness from then on, and that finishes its requests in flight on
// SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond) // a little work, so that requests are in flight at a switch
		fmt.Fprintln(w, os.Getenv("VERSION"))
	})
	var unready atomic.Bool
	mux.HandleFunc("/unready", func(w http.ResponseWriter, r *http.Request) {
		unready.Store(true)
		fmt.Fprint(w, os.Getenv("PORT"))
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"version": %q, "ok": %t}`+"\n", os.Getenv("VERSION"), os.Getenv("OK") != "false")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		ok := 1
		if os.Getenv("OK") == "false" {
			ok = 0
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE app_ok gauge\napp_ok{version=%q} %d\n", os.Getenv("VERSION"), ok)
	})
	mux.HandleFunc("/port", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv("PORT"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(os.Getenv("READY_FILE")); err != nil || unready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/env/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(strings.TrimPrefix(r.URL.Path, "/env/")))
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("app %s listening on %s", os.Getenv("VERSION"), srv.Addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-shut // requests in flight have finished
	log.Printf("app %s stopped", os.Getenv("VERSION"))
}
