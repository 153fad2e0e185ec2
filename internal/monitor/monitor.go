// Package monitor runs synthetic monitors: HTTP checks of an environment's
// active URL with an expected status, JSON assertions on the body and a
// latency budget (the pipeline's monitors:, docs/monitors.md).
//
// Check runs one check; Run runs every monitor on its interval from the
// local probe location until its context ends.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// Location is the probe location of the gantry server itself, the only
// one Run serves.
const Location = "local"

// DefaultInterval is the interval of a monitor that sets none.
const DefaultInterval = 30 * time.Second

// MaxBody bounds how much of a response body is read (1 MiB).
const MaxBody = 1 << 20

// Timeout is how long one check of m may take: its latency budget, else
// its interval, else DefaultInterval.
func Timeout(m runtime.Monitor) time.Duration {
	switch {
	case m.Latency > 0:
		return m.Latency
	case m.Interval > 0:
		return m.Interval
	}
	return DefaultInterval
}

// NewClient returns the client checks use: it never follows a redirect
// (the monitor's status is the one the active URL answers) and uses
// transport (nil: a clone of http.DefaultTransport).
func NewClient(transport http.RoundTripper) *http.Client {
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Check runs one check of m against baseURL (the environment's active
// URL) with client c (nil: NewClient(nil)) and returns its result, located
// at location. The check is bounded by Timeout(m); a failure's Message
// says why and never holds a header value.
func Check(ctx context.Context, c *http.Client, baseURL string, m runtime.Monitor, location string) runtime.MonitorResult {
	res := runtime.MonitorResult{Monitor: m.Name, Location: location, At: time.Now()}
	hide := mask.New()
	for _, v := range m.Header {
		hide.Add(v)
	}
	fail := func(format string, args ...any) runtime.MonitorResult {
		res.Message = hide.Mask(fmt.Sprintf(format, args...))
		return res
	}
	if c == nil {
		c = NewClient(nil)
	}
	method := m.Method
	if method == "" {
		method = http.MethodGet
	}
	want := m.Status
	if want == 0 {
		want = http.StatusOK
	}
	timeout := Timeout(m)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The path is appended to the base URL: anything but a path
	// (@host, //host) would send the request elsewhere.
	if !strings.HasPrefix(m.Path, "/") || strings.HasPrefix(m.Path, "//") {
		return fail("path %q does not start with a single /; a monitor checks a path of the environment's URL", m.Path)
	}
	var body io.Reader
	if m.Body != "" {
		body = strings.NewReader(m.Body)
	}
	req, err := http.NewRequestWithContext(cctx, method, strings.TrimSuffix(baseURL, "/")+m.Path, body)
	if err != nil {
		return fail("cannot make the request %s %s: %v", method, m.Path, unwrapURL(err))
	}
	for k, v := range m.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	// why describes a request error: the caller's cancellation, the
	// budget running out, or what the transport said.
	why := func(err error) string {
		switch {
		case ctx.Err() != nil:
			return "check cancelled"
		case errors.Is(err, context.DeadlineExceeded) && m.Latency > 0:
			return fmt.Sprintf("%s %s: no complete answer within the latency budget of %s", method, m.Path, timeout)
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Sprintf("%s %s: no complete answer within %s", method, m.Path, timeout)
		}
		return fmt.Sprintf("%s %s: %v", method, m.Path, unwrapURL(err))
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		res.Latency = time.Since(start)
		return fail("%s", why(err))
	}
	defer func() { _ = resp.Body.Close() }() // a read-only body: nothing to report
	res.Status = resp.StatusCode
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	res.Latency = time.Since(start)
	if err != nil {
		return fail("reading the body: %s", why(err))
	}
	if m.Latency > 0 && res.Latency > m.Latency {
		return fail("%s %s answered in %s, over the latency budget of %s", method, m.Path, res.Latency.Round(time.Millisecond), m.Latency)
	}
	if resp.StatusCode != want {
		return fail("%s %s: status %d, want %d", method, m.Path, resp.StatusCode, want)
	}
	if len(m.JSON) > 0 {
		if msg := assertJSON(data, m.JSON); msg != "" {
			return fail("%s %s: %s", method, m.Path, msg)
		}
	}
	res.OK = true
	return res
}

// assertJSON checks the assertions against body and returns what failed
// ("" when all hold).
func assertJSON(body []byte, as []runtime.JSONAssertion) string {
	if len(body) > MaxBody {
		return fmt.Sprintf("the body is larger than %d bytes; json assertions read at most that", MaxBody)
	}
	doc, err := decodeJSON(body)
	if err != nil {
		return fmt.Sprintf("the body is not JSON: %v", err)
	}
	var fails []string
	for _, a := range as {
		keys, err := ParsePath(a.Path)
		if err != nil {
			fails = append(fails, fmt.Sprintf("json path %q: %v", a.Path, err))
			continue
		}
		want, err := decodeJSON(a.Equals)
		if err != nil {
			fails = append(fails, fmt.Sprintf("json %s: the expected value is not JSON: %v", a.Path, err))
			continue
		}
		got, err := lookup(doc, keys)
		if err != nil {
			fails = append(fails, fmt.Sprintf("json %s: want %s, got nothing: %v", a.Path, show(want), err))
			continue
		}
		if !equal(got, want) {
			fails = append(fails, fmt.Sprintf("json %s: want %s, got %s", a.Path, show(want), show(got)))
		}
	}
	return strings.Join(fails, "; ")
}

// unwrapURL drops the *url.Error wrapper, whose text repeats the method
// and the whole URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Run checks every monitor of ms that runs from Location against baseURL,
// the first time at once and then every Interval (DefaultInterval when
// unset), one goroutine per monitor, until ctx ends; it returns when ctx
// has ended and every goroutine has (also when no monitor runs from
// Location). report receives each result, one call at a time; a check cut
// short by ctx ending is not reported.
func Run(ctx context.Context, baseURL string, ms []runtime.Monitor, report func(runtime.MonitorResult)) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	c := NewClient(tr)
	var mu sync.Mutex
	serial := func(r runtime.MonitorResult) {
		mu.Lock()
		defer mu.Unlock()
		report(r)
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		if !runsAt(m, Location) {
			continue
		}
		wg.Go(func() { loop(ctx, c, baseURL, m, serial) })
	}
	<-ctx.Done()
	wg.Wait()
}

// runsAt reports whether m runs from location (no locations: local only).
func runsAt(m runtime.Monitor, location string) bool {
	if len(m.Locations) == 0 {
		return location == Location
	}
	return slices.Contains(m.Locations, location)
}

func loop(ctx context.Context, c *http.Client, baseURL string, m runtime.Monitor, report func(runtime.MonitorResult)) {
	interval := m.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r := Check(ctx, c, baseURL, m, Location)
		if ctx.Err() != nil {
			return
		}
		report(r)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// locationRE is a location name: a DNS label (RFC 1123), lower case.
var locationRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ErrLocation is wrapped by ValidLocation's error.
var ErrLocation = errors.New("invalid location name")

// ValidLocation checks a probe location's name: 1 to 63 lower-case
// letters, digits and '-', starting and ending with a letter or digit
// (a DNS label, such as eu-west or dc2).
func ValidLocation(name string) error {
	if !locationRE.MatchString(name) {
		return fmt.Errorf("%w %q: want 1 to 63 of a-z, 0-9 and -, starting and ending with a letter or digit (like a DNS label: eu-west)", ErrLocation, name)
	}
	return nil
}
