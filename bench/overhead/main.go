// Command overhead measures what a reverse proxy adds to a request, for
// bench/deploy.sh: one client sends GET requests in rounds, one straight
// to a backend and one to the proxy in front of it (and, with -peer, one
// to a peer proxy in front of the same backends), rotating which goes
// first, over keep-alive connections (opened by warm-up rounds before the
// measure), at a fixed pace of rounds per second. With several backends
// (-direct URL,URL) the direct requests go round-robin over them, as the
// proxies' do. It prints p50 and p99 of each side, their ratio to direct,
// the difference of the p50s and the median of the per-round
// differences, and with -json the same as one JSON object.
//
//	overhead -direct http://127.0.0.1:PORT/healthz[,URL...] -proxied http://127.0.0.1:PORT2/healthz
//	         [-peer http://127.0.0.1:PORT3/healthz -peer-name nginx] [-pairs 20000] [-rate 500] [-json]
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
	peer := flag.String("peer", "", "URL of the same path through a peer proxy (optional)")
	peerName := flag.String("peer-name", "peer", "the peer proxy's name in the output")
	pairs := flag.Int("pairs", 20000, "rounds of requests measured")
	rate := flag.Int("rate", 500, "rounds per second")
	warm := flag.Int("warmup", 200, "rounds sent before the measure")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	if *direct == "" || *proxied == "" || *pairs < 1 || *rate < 1 || *warm < 0 {
		fmt.Fprintln(os.Stderr, "usage: overhead -direct URL -proxied URL [-peer URL [-peer-name NAME]] [-pairs N>0] [-rate N>0] [-warmup N>=0] [-json]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := measure(ctx, strings.Split(*direct, ","), *proxied, *peer, *pairs, *rate, *warm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	fmt.Printf("%d rounds at %d/s, one keep-alive connection per side\n", res.Pairs, *rate)
	fmt.Printf("direct:  p50 %.0f µs, p99 %.0f µs\n", res.DirectP50, res.DirectP99)
	fmt.Printf("proxied: p50 %.0f µs, p99 %.0f µs\n", res.ProxiedP50, res.ProxiedP99)
	fmt.Printf("overhead: p50 %.0f µs (difference of the p50s), %.0f µs (median of the rounds' differences); proxied/direct p50 %.2fx, p99 %.2fx\n",
		res.OverheadP50, res.PairDiffP50, res.RatioP50, res.RatioP99)
	if res.Peer != nil {
		p := res.Peer
		fmt.Printf("%s: p50 %.0f µs, p99 %.0f µs; overhead p50 %.0f µs (median of the rounds' differences %.0f µs)\n",
			*peerName, p.P50, p.P99, p.OverheadP50, p.PairDiffP50)
		fmt.Printf("gantry/%s overhead at p50: %.2fx\n", *peerName, res.RatioToPeer)
	}
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
	// Peer is the peer proxy's side, measured in the same rounds.
	Peer *Side `json:"peer,omitempty"`
	// RatioToPeer is the proxy's overhead at p50 over the peer's (median
	// of the rounds' differences on each side).
	RatioToPeer float64 `json:"ratio_to_peer,omitempty"`
}

// Side is one proxy's figures, in microseconds.
type Side struct {
	P50         float64 `json:"p50_us"`
	P99         float64 `json:"p99_us"`
	OverheadP50 float64 `json:"overhead_p50_us"`
	PairDiffP50 float64 `json:"pair_diff_p50_us"`
}

func measure(ctx context.Context, directs []string, proxied, peer string, rounds, rate, warm int) (*Result, error) {
	// One idle connection per host is all a sequential client needs; the
	// same transport serves every side.
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
	sides := 2
	if peer != "" {
		sides = 3
	}
	// took[s] holds side s's durations: 0 direct, 1 proxied, 2 peer;
	// diff[s] the per-round differences to direct.
	took := make([][]time.Duration, sides)
	diff := make([][]time.Duration, sides)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	round := make([]time.Duration, sides)
	for i := range warm + rounds {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		urls := []string{directs[i%len(directs)], proxied, peer}[:sides]
		// Rotate which side goes first, so that none always follows
		// another's wake-ups.
		for k := range sides {
			s := (i + k) % sides
			d, err := get(urls[s])
			if err != nil {
				return nil, err
			}
			round[s] = d
		}
		if i < warm {
			continue
		}
		for s := range sides {
			took[s] = append(took[s], round[s])
			diff[s] = append(diff[s], round[s]-round[0])
		}
	}
	if len(took[0]) == 0 {
		return nil, errors.New("nothing measured")
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	r := &Result{Pairs: len(took[0]),
		DirectP50: us(quantile(took[0], 0.50)), DirectP99: us(quantile(took[0], 0.99)),
		ProxiedP50: us(quantile(took[1], 0.50)), ProxiedP99: us(quantile(took[1], 0.99)),
		PairDiffP50: us(quantile(diff[1], 0.50))}
	r.OverheadP50 = r.ProxiedP50 - r.DirectP50
	r.RatioP50 = r.ProxiedP50 / r.DirectP50
	r.RatioP99 = r.ProxiedP99 / r.DirectP99
	if sides == 3 {
		p := &Side{P50: us(quantile(took[2], 0.50)), P99: us(quantile(took[2], 0.99)), PairDiffP50: us(quantile(diff[2], 0.50))}
		p.OverheadP50 = p.P50 - r.DirectP50
		r.Peer = p
		if p.PairDiffP50 > 0 {
			r.RatioToPeer = r.PairDiffP50 / p.PairDiffP50
		}
	}
	return r, nil
}

// quantile returns the q quantile of s (nearest rank); it sorts s.
func quantile(s []time.Duration, q float64) time.Duration {
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
