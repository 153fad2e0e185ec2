package local

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// Probe defaults, as Kubernetes has them.
const (
	defaultPeriod           = 10 * time.Second
	defaultTimeout          = time.Second
	defaultFailureThreshold = 3
	defaultSuccessThreshold = 1
)

type probeConf struct {
	*runtime.Probe
	period, timeout     time.Duration
	failures, successes int
}

func newProbeConf(p *runtime.Probe) *probeConf {
	if p == nil {
		return nil
	}
	c := &probeConf{Probe: p, period: p.Period, timeout: p.Timeout, failures: p.FailureThreshold, successes: p.SuccessThreshold}
	if c.period <= 0 {
		c.period = defaultPeriod
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.failures <= 0 {
		c.failures = defaultFailureThreshold
	}
	if c.successes <= 0 {
		c.successes = defaultSuccessThreshold
	}
	return c
}

// fastReadyProbe is how often readiness is probed from the start of a run
// until the instance is first ready: kubelet probes at the period (5 s in
// the example's chart), which a program that listens within milliseconds
// would spend waiting; a deploy waits for readiness.
const fastReadyProbe = 100 * time.Millisecond

// readyInterval is the wait before the next readiness probe of a run that
// started sinceStart ago: fastReadyProbe (or the period when shorter) until
// the run's first passing probe (passed), for as long as a deploy waits for it
// (initialDelay + failureThreshold × period); the period after that, as
// kubelet has it.
func (c *probeConf) readyInterval(passed bool, sinceStart time.Duration) time.Duration {
	if passed || sinceStart >= c.InitialDelay+time.Duration(c.failures)*c.period {
		return c.period
	}
	return min(fastReadyProbe, c.period)
}

// probeClient never reuses connections (each probe is a fresh request, as
// kubelet's) and, as kubelet, does not verify HTTPS certificates.
var probeClient = &http.Client{Transport: &http.Transport{
	DisableKeepAlives: true,
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet semantics: probes skip verification
	Proxy:             nil,
}}

// probe runs p once against the instance and returns whether it passed and
// its answer for Status ("GET /readyz: 503 Service Unavailable").
func (in *instance) probe(ctx context.Context, p *probeConf) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ports, declared := in.portsNow()
	switch {
	case p.HTTPGet != nil:
		port, err := hostPort(ports, declared, p.HTTPGet.Port)
		if err != nil {
			return false, err.Error()
		}
		scheme := "http"
		if strings.EqualFold(p.HTTPGet.Scheme, "https") {
			scheme = "https"
		}
		pth := p.HTTPGet.Path
		if !strings.HasPrefix(pth, "/") {
			pth = "/" + pth
		}
		label := "GET " + pth
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://127.0.0.1:"+strconv.Itoa(port)+pth, nil)
		if err != nil {
			return false, label + ": " + err.Error()
		}
		req.Header.Set("User-Agent", "gantry-probe")
		resp, err := probeClient.Do(req)
		if err != nil {
			return false, label + ": " + netReason(err)
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400, label + ": " + resp.Status
	case p.TCPPort != "":
		port, err := hostPort(ports, declared, p.TCPPort)
		if err != nil {
			return false, err.Error()
		}
		label := "TCP " + strconv.Itoa(port)
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return false, label + ": " + netReason(err)
		}
		c.Close()
		return true, label + ": open"
	case len(p.Exec) > 0:
		label := "exec " + strings.Join(p.Exec, " ")
		out, err := in.exec(ctx, p.Exec)
		if err != nil {
			msg := label + ": " + err.Error()
			if o := strings.TrimSpace(string(out)); o != "" {
				msg += ": " + firstLine(o)
			}
			return false, msg
		}
		return true, label + ": exit 0"
	}
	return false, "probe has no action"
}

// netReason shortens a dial error to its cause ("connect: connection
// refused"); the address is the instance's, which the caller knows.
func netReason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return se.Error()
		}
		return op.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return err.Error()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// limitedBuffer keeps the first n bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	n int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.n - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
