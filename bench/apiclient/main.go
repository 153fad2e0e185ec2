// Command apiclient is the client side of bench/api.sh, against a real
// gantry serve --listen:
//
//	apiclient seed -state DIR [-runs 200] [-lines 1000]
//	    records runs into the state dir's store (the server is not
//	    running yet): RUNS runs, the last with three steps and a step log
//	    of LINES lines; prints the last run's id.
//	apiclient latency -url URL -token TOKEN [-clients 50] [-duration 20s] [-warmup 2s]
//	    CLIENTS clients send GET URL one after another over keep-alive
//	    connections for DURATION after a warm-up; prints the requests,
//	    their rate and the p50, p99 and max latency.
//	apiclient uisize -url BASE [-token TOKEN]
//	    what a browser loads for the login page and for the run list: the
//	    page, its stylesheet and script modules (followed through their
//	    imports) and the API answers each page asks for; prints the bytes
//	    as served and gzip-compressed.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/store"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: apiclient seed|latency|uisize [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "seed":
		err = seed(os.Args[2:])
	case "latency":
		err = latency(os.Args[2:])
	case "uisize":
		err = uisize(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiclient:", err)
		os.Exit(1)
	}
}

func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	state := fs.String("state", "", "the state dir")
	runs := fs.Int("runs", 200, "runs to record")
	lines := fs.Int("lines", 1000, "lines of the last run's step log")
	_ = fs.Parse(args)
	ctx := context.Background()
	st, err := store.Open(ctx, *state)
	if err != nil {
		return err
	}
	defer st.Close()
	var last int64
	for i := range *runs {
		r := &store.Run{Pipeline: "payments", Event: "push", Branch: "main", SHA: fmt.Sprintf("%040d", i), Status: store.StatusPassed}
		if err := st.CreateRun(ctx, r); err != nil {
			return err
		}
		last = r.ID
	}
	for _, s := range []string{"lint", "unit", "image"} {
		if err := st.PutStep(ctx, &store.Step{RunID: last, Stage: "build", Name: s, Kind: "script", Status: store.StatusPassed}); err != nil {
			return err
		}
	}
	ls := make([]store.LogLine, *lines)
	for i := range ls {
		ls[i] = store.LogLine{Text: fmt.Sprintf("=== RUN TestPayment/%04d --- PASS (0.01s) with some realistic length of output text", i)}
	}
	if err := st.AppendLogs(ctx, last, "build", "unit", ls); err != nil {
		return err
	}
	fmt.Println(last)
	return nil
}

func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	url := fs.String("url", "", "the URL to GET")
	token := fs.String("token", "", "the API token")
	clients := fs.Int("clients", 50, "concurrent clients")
	duration := fs.Duration("duration", 20*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", 2*time.Second, "how long to send before measuring")
	_ = fs.Parse(args)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients}}
	get := func() (time.Duration, error) {
		req, err := http.NewRequest(http.MethodGet, *url, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+*token)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", *url, resp.Status)
		}
		return d, err
	}
	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for range *clients {
		wg.Go(func() {
			var mine []time.Duration
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				d, err := get()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if t0.After(measureFrom) {
					mine = append(mine, d)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if len(lat) == 0 {
		return fmt.Errorf("no request measured")
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("%d requests in %s (%.0f/s), %d clients: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		len(lat), *duration, float64(len(lat))/duration.Seconds(), *clients,
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]))
	return nil
}

// importRE finds the modules a script imports (static and dynamic).
var importRE = regexp.MustCompile(`(?:from\s+|import\s*\(\s*|import\s+)["']([^"']+\.js)["']`)

// assetRE finds the stylesheets and scripts a page links.
var assetRE = regexp.MustCompile(`(?:href|src)="(/[^"]+\.(?:css|js))"`)

func uisize(args []string) error {
	fs := flag.NewFlagSet("uisize", flag.ExitOnError)
	base := fs.String("url", "", "the server's base URL")
	token := fs.String("token", "", "an API token, for the run list's API answers")
	_ = fs.Parse(args)
	fetch := func(p string, auth bool) ([]byte, error) {
		req, err := http.NewRequest(http.MethodGet, *base+p, nil)
		if err != nil {
			return nil, err
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	gz := func(b []byte) int {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Len()
	}
	for _, page := range []struct {
		name, path string
		api        []string // what the page asks the server for once loaded
	}{
		{"login page", "/login", []string{"/auth/session", "/auth/methods"}},
		{"run list", "/runs", []string{"/auth/session", "/api/v1/runs?limit=50"}},
	} {
		seen := map[string]bool{}
		var files []string
		total, totalGz := 0, 0
		add := func(p string, b []byte) {
			files = append(files, fmt.Sprintf("%s %d", p, len(b)))
			total += len(b)
			totalGz += gz(b)
		}
		html, err := fetch(page.path, false)
		if err != nil {
			return err
		}
		add(page.path, html)
		queue := []string{}
		for _, m := range assetRE.FindAllSubmatch(html, -1) {
			queue = append(queue, string(m[1]))
		}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if seen[p] {
				continue
			}
			seen[p] = true
			b, err := fetch(p, false)
			if err != nil {
				return err
			}
			add(p, b)
			if path.Ext(p) == ".js" {
				for _, m := range importRE.FindAllSubmatch(b, -1) {
					queue = append(queue, path.Join(path.Dir(p), string(m[1])))
				}
			}
		}
		apiBytes := 0
		for _, p := range page.api {
			b, err := fetch(p, *token != "" && path.Dir(p) != "/auth")
			if err != nil {
				return err
			}
			apiBytes += len(b)
			add(p, b)
		}
		fmt.Printf("%s: %d files, %d bytes (%d gzip -9), of which API answers %d bytes\n", page.name, len(files), total, totalGz, apiBytes)
		for _, f := range files {
			fmt.Println("  ", f)
		}
	}
	return nil
}
