// Package proxy is the reverse proxy in front of an environment: one HTTP
// listener on the environment's fixed port that spreads requests round-robin
// over the ready instances of the revision that serves.
//
// The backend set is immutable and held by an atomic pointer, so Switch is
// one store: requests that already picked a backend of the old set finish
// there, every request after the store goes to the new set, and the drain
// function Switch returns waits until the old set has no request in flight.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one instance behind the proxy.
type Backend struct {
	// ID names the instance in logs and errors.
	ID string
	// Addr is its host:port.
	Addr string
}

// set is an immutable list of backends with the count of requests in
// flight through it.
type set struct {
	backends []Backend
	next     atomic.Uint64
	inflight atomic.Int64
}

// Proxy is the reverse proxy of one environment. It is an http.Handler;
// Listen also serves it on a port.
type Proxy struct {
	name string
	log  *slog.Logger
	cur  atomic.Pointer[set]
	// split, when set, takes a subset of the requests (split.go).
	split atomic.Pointer[Split]
	tr    *http.Transport // of rp
	rp    *httputil.ReverseProxy
	pool  pool // backend connections of the plain path (forward.go)

	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when the serving goroutine has returned
	err  error
}

type ctxKey struct{}

type pick struct {
	s *set
	i int // index of the backend tried
}

// New returns a proxy for environment name with no backend: until the first
// Switch every request gets 503.
func New(name string, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{name: name, log: log}
	p.cur.Store(&set{})
	// Tuned for backends on the same machine: dials fail fast, many idle
	// connections are kept per backend so that load does not pay a
	// handshake per request, no environment proxy, no compression
	// (bodies pass through as the backend sent them).
	p.tr = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pk := pr.In.Context().Value(ctxKey{}).(*pick)
			pr.SetURL(&url.URL{Scheme: "http", Host: pk.s.backends[pk.i].Addr})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:    retrying{p},
		BufferPool:   bufferPool{},
		ErrorHandler: p.fail,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p
}

// Name is the environment's name.
func (p *Proxy) Name() string { return p.name }

// Backends returns the backends requests go to now.
func (p *Proxy) Backends() []Backend {
	return append([]Backend(nil), p.cur.Load().backends...)
}

// Switch makes backends the set that new requests go to, atomically. The
// returned drain waits until every request that went to the previous set
// has finished, or ctx ends (its error then).
func (p *Proxy) Switch(backends []Backend) (drain func(ctx context.Context) error) {
	old := p.cur.Swap(&set{backends: append([]Backend(nil), backends...)})
	p.log.Info("proxy switched", "environment", p.name, "backends", len(backends))
	return func(ctx context.Context) error {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for old.inflight.Load() > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("drain %d requests of environment %s: %w", old.inflight.Load(), p.name, ctx.Err())
			case <-t.C:
			}
		}
		// Idle connections to the old backends would hold their graceful
		// shutdown (a connection that never carried a request counts as
		// busy for seconds); the new backends' are dialled again.
		p.tr.CloseIdleConnections()
		p.pool.closeIdle()
		return nil
	}
}

// acquire returns the current set with this request counted in flight.
// The count is taken before the set is checked again, so a drain that
// starts after a Switch sees every request that could still reach the old
// set.
func (p *Proxy) acquire() *set {
	for {
		s := p.cur.Load()
		s.inflight.Add(1)
		if p.cur.Load() == s {
			return s
		}
		s.inflight.Add(-1)
	}
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.serveSplit(w, r) {
		return
	}
	s := p.acquire()
	defer s.inflight.Add(-1)
	if len(s.backends) == 0 {
		http.Error(w, fmt.Sprintf("gantry: environment %s has no ready instance\n", p.name), http.StatusServiceUnavailable)
		return
	}
	i := int((s.next.Add(1) - 1) % uint64(len(s.backends)))
	if plain(r) {
		p.forward(w, r, s, i)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &pick{s: s, i: i})))
}

// fail is the ReverseProxy's error handler.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	pk, _ := r.Context().Value(ctxKey{}).(*pick)
	id := ""
	if pk != nil {
		id = pk.s.backends[pk.i].ID
	}
	p.failBackend(w, r, id, err)
}

// failBackend answers a request that instance id did not answer: 502
// naming it, or 499 (logged nowhere) when the client went away.
func (p *Proxy) failBackend(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
		return
	}
	p.log.Warn("proxy: backend failed", "environment", p.name, "instance", id, "err", err)
	http.Error(w, fmt.Sprintf("gantry: environment %s: instance %s did not answer\n", p.name, id), http.StatusBadGateway)
}

// bufferPool reuses the proxy's copy buffers (ReverseProxy allocates 32 KiB
// per request without one).
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// retrying sends a request to its backend and, when the connection cannot
// even be made (nothing of the request was sent), to the next backends of
// the same set: an instance that just died costs no failed request.
type retrying struct{ p *Proxy }

func (rt retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	pk, _ := req.Context().Value(ctxKey{}).(*pick)
	resp, err := rt.p.tr.RoundTrip(req)
	if err == nil || pk == nil || !dialFailed(err) || (req.Body != nil && req.Body != http.NoBody) {
		return resp, err
	}
	for n := 1; n < len(pk.s.backends); n++ {
		b := pk.s.backends[(pk.i+n)%len(pk.s.backends)]
		again := req.Clone(req.Context())
		again.URL.Host = b.Addr
		resp, err = rt.p.tr.RoundTrip(again)
		if err == nil || !dialFailed(err) {
			return resp, err
		}
	}
	return resp, err
}

func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Listen serves the proxy on addr (host:port) until Close. A port that is
// taken gives an error naming the environment and the address.
func (p *Proxy) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("proxy of environment %s: listen on %s: %w", p.name, addr, err)
	}
	p.ln = ln
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)}
	p.done = make(chan struct{})
	go func() { // owned by Proxy: Close waits for done
		defer close(p.done)
		if err := p.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			p.err = err
		}
	}()
	return nil
}

// Addr is the address the proxy listens on ("" before Listen).
func (p *Proxy) Addr() string {
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Close stops listening, lets requests in flight finish until ctx ends,
// and closes the connections to the backends.
func (p *Proxy) Close(ctx context.Context) error {
	var err error
	if p.srv != nil {
		err = p.srv.Shutdown(ctx)
		if err != nil {
			_ = p.srv.Close()
		}
		<-p.done
		if err == nil {
			err = p.err
		}
	}
	p.tr.CloseIdleConnections()
	p.pool.closeIdle()
	if err != nil {
		return fmt.Errorf("close proxy of environment %s: %w", p.name, err)
	}
	return nil
}

var _ http.Handler = (*Proxy)(nil)
