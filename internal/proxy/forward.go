package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The plain path: an HTTP/1.x request without upgrade or "Expect" (nearly
// every request an environment gets) is forwarded by the handler's own
// goroutine over a kept-alive connection from the proxy's pool: the
// request is written, the response read and copied back, and the
// connection put back. http.Transport, which ReverseProxy uses, hands each
// request to a writing and a reading goroutine per connection; on a busy
// machine every hand-off is a thread to wake and wait for, which was most
// of the proxy's overhead. Other requests still go through ReverseProxy.

// Backend connection pool settings, as the Transport's were.
const (
	maxIdlePerBackend = 256
	idleTimeout       = 90 * time.Second
	dialTimeout       = 2 * time.Second
)

// plain reports whether r takes the plain path.
func plain(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.Method != http.MethodConnect &&
		r.Header["Upgrade"] == nil && r.Header["Expect"] == nil &&
		strings.HasPrefix(r.RequestURI, "/")
}

// backendConn is one HTTP/1.1 connection to a backend.
type backendConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // since when it waits in the pool
}

// alive reports whether an idle connection can carry a request: the
// backend has neither closed it nor sent anything unasked. One
// non-blocking peek at the socket.
func (bc *backendConn) alive() bool {
	if bc.br.Buffered() > 0 {
		return false
	}
	sc, ok := bc.c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	open := false
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && open
}

// pool keeps idle backend connections per address, newest last.
type pool struct {
	mu   sync.Mutex
	idle map[string][]*backendConn
}

// get returns an idle connection to addr that is still open (reused), or
// dials a new one.
func (pl *pool) get(ctx context.Context, addr string) (bc *backendConn, reused bool, err error) {
	for {
		pl.mu.Lock()
		list := pl.idle[addr]
		if len(list) == 0 {
			pl.mu.Unlock()
			break
		}
		bc = list[len(list)-1]
		list[len(list)-1] = nil
		pl.idle[addr] = list[:len(list)-1]
		pl.mu.Unlock()
		if time.Since(bc.idle) < idleTimeout && bc.alive() {
			return bc, true, nil
		}
		bc.c.Close()
	}
	bc, err = dial(ctx, addr)
	return bc, false, err
}

func dial(ctx context.Context, addr string) (*backendConn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &backendConn{addr: addr, c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, nil
}

// put returns bc to the pool; connections idle for longer than
// idleTimeout, and those beyond maxIdlePerBackend, are closed.
func (pl *pool) put(bc *backendConn) {
	bc.idle = time.Now()
	pl.mu.Lock()
	if pl.idle == nil {
		pl.idle = map[string][]*backendConn{}
	}
	list := pl.idle[bc.addr]
	var drop []*backendConn
	for len(list) > 0 && time.Since(list[0].idle) >= idleTimeout {
		drop = append(drop, list[0])
		list = list[1:]
	}
	if len(list) < maxIdlePerBackend {
		list = append(list, bc)
	} else {
		drop = append(drop, bc)
	}
	pl.idle[bc.addr] = list
	pl.mu.Unlock()
	for _, d := range drop {
		d.c.Close()
	}
}

// closeIdle closes every idle connection.
func (pl *pool) closeIdle() {
	pl.mu.Lock()
	idle := pl.idle
	pl.idle = nil
	pl.mu.Unlock()
	for _, list := range idle {
		for _, bc := range list {
			bc.c.Close()
		}
	}
}

// hopHeaders are the hop-by-hop headers (RFC 9110 7.6.1), which stop at
// the proxy.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes the hop-by-hop headers of h and those its
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// outgoing is the request the backend gets for r: r's headers without the
// hop-by-hop ones, the proxy's own X-Forwarded-For, -Host and -Proto (a
// client's are dropped, as ReverseProxy's SetXForwarded does), the
// client's Host, no User-Agent added.
func outgoing(r *http.Request) *http.Request {
	h := make(http.Header, len(r.Header)+3)
	for k, vv := range r.Header {
		h[k] = vv // the slices are not modified, only h's entries
	}
	removeHopHeaders(h)
	for _, v := range r.Header["Te"] {
		if strings.Contains(strings.ToLower(v), "trailers") {
			h["Te"] = []string{"trailers"}
		}
	}
	delete(h, "Forwarded")
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h["X-Forwarded-For"] = []string{ip}
	} else {
		delete(h, "X-Forwarded-For")
	}
	h["X-Forwarded-Host"] = []string{r.Host}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h["X-Forwarded-Proto"] = []string{proto}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // Request.Write adds Go's otherwise
	}
	out := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:  "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: r.Host, ContentLength: r.ContentLength, Trailer: r.Trailer,
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		out.Body = r.Body
	}
	return out
}

// replayable reports whether out can be sent again on another connection
// after one that failed before any answer: no body, a safe method.
func replayable(out *http.Request) bool {
	switch out.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return out.Body == nil
	}
	return false
}

// forward sends r to the set's backend i (on to the next ones while a
// bodiless request cannot even connect) and copies the answer to w.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, s *set, i int) {
	ctx := r.Context()
	out := outgoing(r)
	var (
		b      Backend
		bc     *backendConn
		reused bool
		err    error
	)
	for n := range len(s.backends) {
		b = s.backends[(i+n)%len(s.backends)]
		if out.Host == "" {
			out.Host = b.Addr
		}
		bc, reused, err = p.pool.get(ctx, b.Addr)
		if err == nil || out.Body != nil || !dialFailed(err) {
			break
		}
	}
	if err != nil {
		p.failBackend(w, r, b.ID, fmt.Errorf("dial %s: %w", b.Addr, err))
		return
	}
	// The client going away ends the backend's request: the connection is
	// broken off (and not reused).
	release := watch(ctx, bc.c)
	resp, err := p.exchange(w, bc, out)
	if err != nil && reused && ctx.Err() == nil && replayable(out) {
		// The backend closed the kept-alive connection as the request
		// went out: once more on a new one.
		release()
		bc.c.Close()
		if bc, err = dial(ctx, b.Addr); err == nil {
			release = watch(ctx, bc.c)
			resp, err = p.exchange(w, bc, out)
		}
	}
	if err != nil {
		if bc != nil {
			release()
			bc.c.Close()
		}
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		p.failBackend(w, r, b.ID, err)
		return
	}
	p.respond(w, r, bc, resp, release)
}

// watch breaks c off (a deadline in the past) when ctx ends, until
// release, which reports whether c was left alone.
func watch(ctx context.Context, c net.Conn) (release func() bool) {
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// exchange writes out on bc and reads the response's head, passing
// informational (1xx) answers on to w.
func (p *Proxy) exchange(w http.ResponseWriter, bc *backendConn, out *http.Request) (*http.Response, error) {
	if err := out.Write(bc.bw); err != nil {
		return nil, err
	}
	if err := bc.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(bc.br, out)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			resp.Body.Close()
			return nil, errors.New("backend switched protocols unasked")
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			h := w.Header()
			for k, vv := range resp.Header {
				h[k] = vv
			}
			w.WriteHeader(resp.StatusCode)
			clear(h)
			continue
		}
		return resp, nil
	}
}

// respond copies resp to w and puts bc back in the pool when the
// response ended cleanly, the backend keeps the connection open and
// release (of watch) says the client's end did not break it off.
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, bc *backendConn, resp *http.Response, release func() bool) {
	removeHopHeaders(resp.Header)
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	err := copyBody(w, resp.Body, streamed(resp))
	resp.Body.Close()
	if err != nil {
		bc.c.Close()
		if r.Context().Err() != nil || r.Context().Value(http.ServerContextKey) == nil {
			return // the client went away, or no http.Server to abort
		}
		// The client must not take a short body for the whole one: the
		// server breaks the connection off.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	if !release() || resp.Close {
		bc.c.Close()
		return
	}
	p.pool.put(bc)
}

// streamed reports whether resp is sent on as it comes (flushed after
// every read): a body of unknown length or an event stream, as
// ReverseProxy does.
func streamed(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "text/event-stream"
}

// copyBody copies body to w, flushing after every read when flush is set.
// Only an error of the body's (the backend's side) or of w is returned.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	if !flush {
		_, err := io.CopyBuffer(struct{ io.Writer }{w}, body, *buf)
		return err
	}
	rc := http.NewResponseController(w)
	for {
		n, rerr := body.Read(*buf)
		if n > 0 {
			if _, err := w.Write((*buf)[:n]); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
