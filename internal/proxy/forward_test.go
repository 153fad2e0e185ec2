package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// proxyTo serves a proxy in front of h (a real backend server) and returns
// the proxy's URL and the backend server.
func proxyTo(t *testing.T, h http.Handler) (string, *httptest.Server) {
	t.Helper()
	be := httptest.NewServer(h)
	t.Cleanup(be.Close)
	p := New("staging", nil)
	p.Switch([]Backend{{ID: "be", Addr: strings.TrimPrefix(be.URL, "http://")}})
	if err := p.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return "http://" + p.Addr(), be
}

// rawRequest sends req as written on a new connection and returns the
// response.
func rawRequest(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestHeadersAcrossTheProxy: hop-by-hop headers (and those the Connection
// header names) stop at the proxy both ways, X-Forwarded-* are the
// proxy's own (a client cannot spoof them), the client's Host is kept and
// a request without User-Agent gets none.
func TestHeadersAcrossTheProxy(t *testing.T) {
	seen := make(chan *http.Request, 1)
	url, _ := proxyTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Resp", "kept")
		io.WriteString(w, "ok")
	}))
	addr := strings.TrimPrefix(url, "http://")
	resp := rawRequest(t, addr, "GET /p?q=1 HTTP/1.1\r\nHost: app.example\r\n"+
		"Connection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nForwarded: for=6.6.6.6\r\nX-Kept: yes\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("response %d %q, want 200 ok", resp.StatusCode, body)
	}
	r := <-seen
	tests := []struct{ header, want string }{
		{"X-Hop", ""}, {"Keep-Alive", ""}, {"Proxy-Connection", ""}, {"Forwarded", ""},
		{"X-Forwarded-For", "127.0.0.1"}, {"X-Forwarded-Host", "app.example"}, {"X-Forwarded-Proto", "http"},
		{"X-Kept", "yes"}, {"User-Agent", ""},
	}
	for _, tt := range tests {
		t.Run("request "+tt.header, func(t *testing.T) {
			if got := strings.Join(r.Header.Values(tt.header), ","); got != tt.want {
				t.Errorf("backend saw %s = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
	if r.Host != "app.example" || r.URL.RequestURI() != "/p?q=1" {
		t.Errorf("backend saw Host %q, URI %q; want app.example, /p?q=1", r.Host, r.URL.RequestURI())
	}
	for _, tt := range []struct{ header, want string }{{"X-Resp-Hop", ""}, {"Keep-Alive", ""}, {"X-Resp", "kept"}} {
		t.Run("response "+tt.header, func(t *testing.T) {
			if got := resp.Header.Get(tt.header); got != tt.want {
				t.Errorf("client saw %s = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

// TestBodiesAndTrailers: request bodies of known and unknown length reach
// the backend whole, and the response's body and trailers reach the client.
func TestBodiesAndTrailers(t *testing.T) {
	url, _ := proxyTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
		fmt.Fprintf(w, "%s %s", r.Method, b)
		w.Header().Set("X-Sum", fmt.Sprint(len(b)))
	}))
	big := strings.Repeat("x", 100_000)
	tests := []struct {
		name, method string
		body         io.Reader
		wantBody     string
		wantSum      string
	}{
		{"get", "GET", nil, "GET ", "0"},
		{"known length", "POST", strings.NewReader("hello"), "POST hello", "5"},
		{"unknown length", "PUT", io.MultiReader(strings.NewReader(big)), "PUT " + big, "100000"},
		{"head", "HEAD", nil, "", ""},
	}
	c := &http.Client{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, url+"/", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || string(b) != tt.wantBody {
				t.Errorf("response %d, body of %d bytes %.20q, want 200, %d bytes %.20q", resp.StatusCode, len(b), b, len(tt.wantBody), tt.wantBody)
			}
			if got := resp.Trailer.Get("X-Sum"); got != tt.wantSum {
				t.Errorf("trailer X-Sum = %q, want %q", got, tt.wantSum)
			}
		})
	}
}

// TestBackendConnectionsReused: sequential requests go over one kept-alive
// connection to the backend, and one the backend closed while idle is
// noticed: the next requests (with and without a body) still succeed.
func TestBackendConnectionsReused(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	be.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	defer be.Close()
	p := New("staging", nil)
	p.Switch([]Backend{{ID: "be", Addr: strings.TrimPrefix(be.URL, "http://")}})
	srv := httptest.NewServer(p)
	defer srv.Close()
	for range 20 {
		if code, body := get(t, srv.Client(), srv.URL+"/"); code != 200 || body != "ok" {
			t.Fatalf("GET = %d %q", code, body)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("20 sequential requests opened %d backend connections, want 1", got)
	}
	for i, method := range []string{"GET", "POST"} {
		be.CloseClientConnections() // the backend ends its idle connections
		req, _ := http.NewRequest(method, srv.URL+"/", strings.NewReader("body"))
		if method == "GET" {
			req.Body, req.ContentLength = nil, 0
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s after the backend closed its connections: %v", method, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("%s after the backend closed its connections: %d %q, want 200 ok", method, resp.StatusCode, b)
		}
		if got, want := conns.Load(), int64(2+i); got != want {
			t.Errorf("backend connections = %d, want %d (one new after the close)", got, want)
		}
	}
}

// TestStreamedResponseFlushed: a response of unknown length reaches the
// client as the backend writes it, not when it ends.
func TestStreamedResponseFlushed(t *testing.T) {
	gotFirst := make(chan struct{})
	url, _ := proxyTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-gotFirst:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: 2\n\n")
	}))
	resp, err := http.Get(url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: 1\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	close(gotFirst)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: 2\n\n" {
		t.Errorf("rest = %q, %v", rest, err)
	}
}

// TestClientGoneEndsBackendRequest: when the client goes away, the
// backend's request is cancelled too.
func TestClientGoneEndsBackendRequest(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	url, _ := proxyTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(cancelled)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/slow", nil)
	errc := make(chan error, 1)
	go func() { // owned: received below
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	<-errc
	select {
	case <-cancelled:
	case <-time.After(30 * time.Second): // bounds a hang only
		t.Fatal("the backend's request was not cancelled")
	}
}

// TestBackendFailsMidBody: a backend that dies after its headers gives the
// client a broken response, never a short one that looks complete.
func TestBackendFailsMidBody(t *testing.T) {
	url, _ := proxyTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
		bw.Flush()
		c.Close()
	}))
	resp, err := http.Get(url + "/")
	if err != nil {
		return // broken before the headers: fine too
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("body %q read without error, want the response broken", b)
	}
}

// TestUpgradePassesThrough: a protocol upgrade (websocket-like) still
// works through the proxy.
func TestUpgradePassesThrough(t *testing.T) {
	url, _ := proxyTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", 400)
			return
		}
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		bw.Flush()
		line, _ := bw.ReadString('\n')
		bw.WriteString("echo " + line)
		bw.Flush()
	}))
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, "hi\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo hi\n" {
		t.Errorf("after the upgrade: %q %v, want echo hi", line, err)
	}
}
