package envctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// scrapeWait bounds how long an analysis waits for its Prometheus to
// have scraped green; scrapePoll is how often it asks.
var (
	scrapeWait = time.Minute
	scrapePoll = 250 * time.Millisecond
)

// awaitScrapes waits until the Prometheus at promURL has scraped every
// instance twice within the last minute (what a rate() over green needs),
// or scrapeWait passed, or ctx ended. Green's targets reach the
// environment's Prometheus through its file discovery and its scrape
// interval, seconds after green is ready; measuring before would count
// "no data" as errors. It reports whether the scrapes were seen.
func awaitScrapes(ctx context.Context, promURL string, insts []runtime.Instance) bool {
	var addrs []string
	for _, in := range insts {
		if a := in.Addr(); a != "" {
			addrs = append(addrs, regexp.QuoteMeta(a))
		}
	}
	if len(addrs) == 0 {
		return true
	}
	// A raw (backquoted) PromQL string: the regexp's backslashes stay.
	q := fmt.Sprintf("count_over_time(up{instance=~`%s`}[1m]) >= 2", strings.Join(addrs, "|"))
	u := strings.TrimSuffix(promURL, "/") + "/api/v1/query?query=" + url.QueryEscape(q)
	deadline := time.NewTimer(scrapeWait)
	defer deadline.Stop()
	tick := time.NewTicker(scrapePoll)
	defer tick.Stop()
	for {
		if scrapedAll(ctx, u, len(addrs)) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

// scrapedAll asks the query URL u and reports whether its vector has
// want series.
func scrapedAll(ctx context.Context, u string, want int) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || body.Status != "success" {
		return false
	}
	return len(body.Data.Result) >= want
}
