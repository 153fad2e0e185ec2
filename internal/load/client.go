package load

import (
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// maxConns caps the connections per host. Past it, requests wait for a
// free connection (the wait counts in their latency) instead of dialing:
// a generator that falls behind would otherwise dial ever more connections
// and fall further behind.
const maxConns = 512

// newClient returns the HTTP client of a test. The generator uses fasthttp,
// whose client reuses request and response objects and costs a fraction of
// net/http's CPU per request — CPU the generator needs to keep its schedule.
func (t *Test) newClient(conns int) *fasthttp.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &fasthttp.Client{
		Name:                          "gantry-load",
		MaxConnsPerHost:               conns,
		MaxIdleConnDuration:           90 * time.Second,
		ReadTimeout:                   t.cfg.Timeout,
		WriteTimeout:                  t.cfg.Timeout,
		MaxConnWaitTimeout:            t.cfg.Timeout,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		Dial: func(addr string) (net.Conn, error) {
			c, err := dialer.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return t.conns.add(c), nil
		},
	}
}

// connSet tracks open connections.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

func (s *connSet) add(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, set: s}
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*trackedConn]struct{}{}
	}
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	return tc
}

func (s *connSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// closeAll closes every open connection, failing requests in flight.
func (s *connSet) closeAll() {
	s.mu.Lock()
	all := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
}
