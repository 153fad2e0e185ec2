// Command overhead measures what a reverse proxy adds to a request, for
// bench/deploy.sh: one client sends GET requests in pairs, one straight to
// a backend and one to the proxy in front of it, alternating which goes
// first, over keep-alive connections (opened by warm-up pairs before the
// measure), at a fixed pace of pairs per second. With several backends
// (-direct URL,URL) the direct requests go round-robin over them, as the
// proxy's do. It prints p50 and p99 of
// each side, their ratio, the difference of the p50s and the median of the
// per-pair differences, and with -json the same as one JSON object.
//
//	overhead -direct http://127.0.0.1:PORT/healthz[,URL...] -proxied http://127.0.0.1:PORT2/healthz [-pairs 20000] [-rate 500] [-json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"
)

func main() {
	direct := flag.String("direct", "", "URL of the backend itself (comma-separated: several, taken in turn)")
	proxied := flag.String("proxied", "", "URL of the same path through the proxy")
	pairs := flag.Int("pairs", 20000, "pairs of requests measured")
	rate := flag.Int("rate", 500, "pairs per second")
	warm := flag.Int("warmup", 200, "pairs sent before the measure")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	if *direct == "" || *proxied == "" || *pairs < 1 || *rate < 1 || *warm < 0 {
		fmt.Fprintln(os.Stderr, "usage: overhead -direct URL -proxied URL [-pairs N>0] [-rate N>0] [-warmup N>=0] [-json]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := measure(ctx, strings.Split(*direct, ","), *proxied, *pairs, *rate, *warm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	fmt.Printf("%d pairs at %d/s, one keep-alive connection per side\n", res.Pairs, *rate)
	fmt.Printf("direct:  p50 %.0f µs, p99 %.0f µs\n", res.DirectP50, res.DirectP99)
	fmt.Printf("proxied: p50 %.0f µs, p99 %.0f µs\n", res.ProxiedP50, res.ProxiedP99)
	fmt.Printf("overhead: p50 %.0f µs (difference of the p50s), %.0f µs (median of the pairs' differences); proxied/direct p50 %.2fx, p99 %.2fx\n",
		res.OverheadP50, res.PairDiffP50, res.RatioP50, res.RatioP99)
}

// Result is what one run measured, in microseconds.
type Result struct {
	Pairs       int     `json:"pairs"`
	DirectP50   float64 `json:"direct_p50_us"`
	DirectP99   float64 `json:"direct_p99_us"`
	ProxiedP50  float64 `json:"proxied_p50_us"`
	ProxiedP99  float64 `json:"proxied_p99_us"`
	OverheadP50 float64 `json:"overhead_p50_us"`
	PairDiffP50 float64 `json:"pair_diff_p50_us"`
	RatioP50    float64 `json:"ratio_p50"`
	RatioP99    float64 `json:"ratio_p99"`
}

func measure(ctx context.Context, directs []string, proxied string, pairs, rate, warm int) (*Result, error) {
	// One idle connection per host is all a sequential client needs; the
	// same transport serves both sides.
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(url string) (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("GET %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return d, nil
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var ds, ps, diffs []time.Duration
	for i := range warm + pairs {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		direct := directs[i%len(directs)]
		first, second := direct, proxied
		if i%2 == 1 {
			first, second = proxied, direct
		}
		a, err := get(first)
		if err != nil {
			return nil, err
		}
		b, err := get(second)
		if err != nil {
			return nil, err
		}
		if i < warm {
			continue
		}
		d, p := a, b
		if i%2 == 1 {
			d, p = b, a
		}
		ds, ps, diffs = append(ds, d), append(ps, p), append(diffs, p-d)
	}
	if len(ds) == 0 {
		return nil, errors.New("nothing measured")
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	r := &Result{Pairs: len(ds),
		DirectP50: us(quantile(ds, 0.50)), DirectP99: us(quantile(ds, 0.99)),
		ProxiedP50: us(quantile(ps, 0.50)), ProxiedP99: us(quantile(ps, 0.99)),
		PairDiffP50: us(quantile(diffs, 0.50))}
	r.OverheadP50 = r.ProxiedP50 - r.DirectP50
	r.RatioP50 = r.ProxiedP50 / r.DirectP50
	r.RatioP99 = r.ProxiedP99 / r.DirectP99
	return r, nil
}

// quantile returns the q quantile of s (nearest rank); it sorts s.
func quantile(s []time.Duration, q float64) time.Duration {
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
