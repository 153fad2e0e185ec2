package serve

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// asIdentity serves h as id: a test's stand-in for the socket's or the
// TCP listener's authentication.
func asIdentity(id auth.Identity, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	})
}

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr    string
		tls     bool
		wantErr error
		bad     bool
	}{
		{"127.0.0.1:8080", false, nil, false},
		{"[::1]:8080", false, nil, false},
		{"localhost:8080", false, nil, false},
		{"0.0.0.0:8080", false, ErrCleartextListen, true},
		{":8080", false, ErrCleartextListen, true},
		{"192.168.1.5:443", false, ErrCleartextListen, true},
		{"gantry.example.com:443", false, ErrCleartextListen, true},
		{":8443", true, nil, false},
		{"8080", false, nil, true},
		{"127.0.0.1:http2", false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckListen(tt.addr, tt.tls)
			if (err != nil) != tt.bad || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("CheckListen(%q, tls %v) = %v, want error %v (%v)", tt.addr, tt.tls, err, tt.bad, tt.wantErr)
			}
			if errors.Is(err, ErrCleartextListen) && !strings.Contains(err.Error(), "in clear") {
				t.Errorf("error %q does not say why", err)
			}
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gantry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, keyf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return cert, keyf, pool
}

// tcpServer is Run with a TLS listener on 127.0.0.1, its socket client,
// an HTTPS client, and an API token per role.
type tcpServer struct {
	rec    *recorder
	roller *fakeRoller
	sock   *Client
	https  *http.Client
	base   string
	tokens map[auth.Role]string
	st     *store.Store
	hooks  *syncbuf.Buffer
}

func startTCPServer(t *testing.T) *tcpServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "authstore"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.New(ctx, auth.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ts := &tcpServer{rec: newRecorder(), roller: &fakeRoller{}, tokens: map[auth.Role]string{}, st: st, hooks: &syncbuf.Buffer{}}
	admin := &auth.Admin{Store: st, Actor: "test", Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	for _, r := range auth.Roles() {
		name := "u-" + string(r)
		if err := admin.AddUser(ctx, name, r, []byte("vellum-oxbow-Trident-48-quasar")); err != nil {
			t.Fatal(err)
		}
		tok, _, err := admin.CreateToken(ctx, name, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[r] = tok
	}
	cert, key, pool := selfSigned(t, dir)
	ready := make(chan struct{})
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	hooks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ts.hooks.Write(b)
		w.WriteHeader(http.StatusAccepted)
	})
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := Config{StateDir: stateDir, Deployer: ts.rec, Roller: ts.roller, Version: "test",
		Logger: slog.New(slog.NewTextHandler(&syncbuf.Buffer{}, nil)), noRegistry: true, ready: func() { close(ready) },
		Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key, Auth: svc, Webhooks: hooks, tcpAddr: func(a net.Addr) { addr <- a }}
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		st.Close()
	})
	select {
	case <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("Run ended before it listened: %v", err)
	}
	ts.base = "https://" + (<-addr).String()
	ts.https = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(ts.https.CloseIdleConnections)
	ts.sock, err = Dial(ctx, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.sock.Close)
	return ts
}

func (ts *tcpServer) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ts.https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTCPEachRoleEachEndpoint calls every endpoint of the API with the
// token of each role over the TLS listener: the role's verdict for the
// endpoint's action decides between 403 and reaching the deployer.
func TestTCPEachRoleEachEndpoint(t *testing.T) {
	ts := startTCPServer(t)
	deploy := `{"workloads":[{"name":"pay","image":"r/p@sha256:00","replicas":1}],"who":"mallory"}`
	endpoints := []struct {
		method, path, body string
		action             auth.Action
	}{
		{"GET", "/api/v1/health", "", auth.ActionRead},
		{"GET", "/api/v1/environments", "", auth.ActionRead},
		{"GET", "/api/v1/environments/staging", "", auth.ActionRead},
		{"GET", "/api/v1/environments/staging/revisions", "", auth.ActionRead},
		{"GET", "/api/v1/environments/staging/rollout", "", auth.ActionRead},
		{"POST", "/api/v1/environments/staging/deploy", deploy, auth.ActionDeploy},
		{"POST", "/api/v1/environments/staging/rollback", `{"who":"mallory"}`, auth.ActionEnvRollback},
		{"POST", "/api/v1/environments/staging/rollout", `{"deploy":{"workloads":[{"name":"pay","image":"r/p@sha256:00","replicas":1}]}}`, auth.ActionRollout},
		{"POST", "/api/v1/environments/staging/promote", `{"who":"mallory"}`, auth.ActionRollout},
		{"POST", "/api/v1/environments/staging/abort", `{"who":"mallory"}`, auth.ActionRollout},
		{"POST", "/api/v1/environments/staging/retry", `{"who":"mallory"}`, auth.ActionRollout},
		{"POST", "/api/v1/environments/staging/undo", `{"who":"mallory"}`, auth.ActionRollout},
	}
	for _, role := range auth.Roles() {
		for _, e := range endpoints {
			t.Run(string(role)+" "+e.method+" "+e.path, func(t *testing.T) {
				got, body := ts.do(t, e.method, e.path, ts.tokens[role], e.body)
				if role.Can(e.action) {
					if got == http.StatusForbidden || got == http.StatusUnauthorized {
						t.Errorf("status %d %s, want the endpoint's answer (%s may %s)", got, body, role, e.action)
					}
					if strings.Contains(body, "mallory") {
						t.Errorf("answer %s names the claimed author, want the token's user", body)
					}
					return
				}
				if got != http.StatusForbidden || !strings.Contains(body, string(mustMin(e.action))) {
					t.Errorf("status %d %s, want 403 naming the role %s", got, body, mustMin(e.action))
				}
			})
		}
	}
	t.Run("no token", func(t *testing.T) {
		if got, _ := ts.do(t, "GET", "/api/v1/health", "", ""); got != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", got)
		}
	})
	t.Run("shutdown needs admin", func(t *testing.T) {
		if got, _ := ts.do(t, "POST", "/api/v1/shutdown", ts.tokens[auth.RoleOncallLead], ""); got != http.StatusForbidden {
			t.Errorf("oncall-lead shutdown: status %d, want 403", got)
		}
	})
	// The deployer saw the token's user as the author, never "mallory".
	ts.rec.mu.Lock()
	reqs := append([]runtime.DeployRequest(nil), ts.rec.reqs...)
	ts.rec.mu.Unlock()
	if len(reqs) == 0 {
		t.Fatal("no deploy reached the deployer")
	}
	for _, r := range reqs {
		if r.Who == "mallory" || !strings.HasPrefix(r.Who, "u-") {
			t.Errorf("deploy recorded by %q, want the token's user", r.Who)
		}
	}
	for _, c := range ts.rec.Calls() {
		if strings.Contains(c, "mallory") {
			t.Errorf("deployer call %q names the claimed author", c)
		}
	}
}

func mustMin(a auth.Action) auth.Role {
	r, _ := auth.MinRole(a)
	return r
}

// TestTCPRoutes: webhooks bypass the middleware, the socket keeps its
// owner's identity and its callers' claimed authors, state-changing
// requests are audited, unknown paths and big bodies are refused.
func TestTCPRoutes(t *testing.T) {
	ts := startTCPServer(t)
	if got, _ := ts.do(t, "POST", "/webhooks/github", "", `{"zen":"hi"}`); got != http.StatusAccepted {
		t.Errorf("webhook without a token: status %d, want 202 from the webhook handler", got)
	}
	if !strings.Contains(ts.hooks.String(), "zen") {
		t.Error("the webhook handler got no body")
	}
	if got, _ := ts.do(t, "GET", "/api/nowhere", "", ""); got != http.StatusNotFound {
		t.Errorf("unknown API path: status %d, want 404", got)
	}
	if got, _ := ts.do(t, "GET", "/nowhere.js", "", ""); got != http.StatusNotFound {
		t.Errorf("unknown file: status %d, want 404", got)
	}
	// A page's own path is the web UI, to anyone: the page asks for a
	// login before it reads anything.
	for _, page := range []string{"/runs/1", "/login"} {
		if got, body := ts.do(t, "GET", page, "", ""); got != http.StatusOK || !strings.Contains(body, `<main id="main"`) {
			t.Errorf("GET %s: status %d, want 200 and the UI's index", page, got)
		}
	}
	if got, _ := ts.do(t, "POST", "/login", "", `{"user":"u-viewer","password":"nope"}`); got != http.StatusUnauthorized {
		t.Errorf("wrong login: status %d, want 401", got)
	}
	big := `{"who":"` + strings.Repeat("a", maxBody) + `"}`
	if got, _ := ts.do(t, "POST", "/api/v1/environments/staging/rollback", ts.tokens[auth.RoleAdmin], big); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", got)
	}
	if got, body := ts.do(t, "POST", "/api/v1/environments/staging/rollback", ts.tokens[auth.RoleAdmin], `{"reason":"bad"}`); got != http.StatusOK {
		t.Errorf("rollback as admin: status %d %s, want 200", got, body)
	}

	// The socket: the owner is admin and may name the author.
	rev, err := ts.sock.Rollback(context.Background(), "staging", 0, "ann", "bad")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Who != "ann" {
		t.Errorf("rollback over the socket by %q, want ann", rev.Who)
	}
	// Unnamed, the author is the peer's operating system login.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if rev, err = ts.sock.Rollback(context.Background(), "staging", 0, "", ""); err != nil || rev.Who != me.Username {
		t.Errorf("rollback over the socket without a name: by %q (%v), want %s", rev.Who, err, me.Username)
	}

	entries, err := ts.st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Subject)
		if !strings.HasPrefix(e.Action, "http.") && !strings.HasPrefix(e.Action, "login") {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil || d["remote"] != "127.0.0.1" {
			t.Errorf("audit detail %q: want JSON with remote 127.0.0.1", e.Detail)
		}
	}
	for _, want := range []string{" http.POST /webhooks/github", "u-admin http.POST /api/v1/environments/staging/rollback", "u-viewer login.failed u-viewer"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("audit log %q lacks %q", got, want)
		}
	}
}

func TestTCPCleartextRefused(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := auth.New(ctx, auth.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	err = Run(ctx, Config{StateDir: t.TempDir(), Deployer: newRecorder(), noRegistry: true, Listen: "0.0.0.0:0", Auth: svc})
	if !errors.Is(err, ErrCleartextListen) {
		t.Errorf("Run on 0.0.0.0 without TLS: %v, want ErrCleartextListen", err)
	}
	err = Run(ctx, Config{StateDir: t.TempDir(), Deployer: newRecorder(), noRegistry: true, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Errorf("Run with a listener and no Auth: %v, want an error", err)
	}
}

func TestTCPServerLimits(t *testing.T) {
	s := newTCPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler), nil)
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
		t.Errorf("server limits: ReadHeaderTimeout %v, ReadTimeout %v, IdleTimeout %v, MaxHeaderBytes %d; want all set, headers <= 1 MiB",
			s.ReadHeaderTimeout, s.ReadTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
	if s.WriteTimeout != 0 {
		t.Errorf("WriteTimeout %v: want none, it would cut log streams", s.WriteTimeout)
	}
	// Oversized headers are refused by the real server.
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config = s
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("X-Big", strings.Repeat("a", 2*tcpMaxHeader))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: status %d, want 431", resp.StatusCode)
	}
}

// TestTCPBodyDeadline: with the listener's server (its ReadTimeout
// shortened), a client that stalls in its body is cut off; once the
// body is read, the handler may run past the deadline (a deploy waiting
// for readiness).
func TestTCPBodyDeadline(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := auth.New(ctx, auth.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		readErr   error
		cancelled bool
	}
	got := make(chan outcome, 1)
	hooks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		o := outcome{readErr: err}
		if err == nil {
			// Past the body deadline (50 ms) several times over.
			select {
			case <-r.Context().Done():
				o.cancelled = true
			case <-time.After(300 * time.Millisecond):
			}
		}
		got <- o
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newTCPServer(TCPHandler(svc, http.NotFoundHandler(), nil, hooks), slog.New(slog.DiscardHandler), nil)
	srv.Config.ReadTimeout = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()

	t.Run("stalled body", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /webhooks/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten.."); err != nil {
			t.Fatal(err)
		}
		o := <-got
		var ne net.Error
		if !errors.As(o.readErr, &ne) || !ne.Timeout() {
			t.Errorf("reading a stalled body: %v, want a timeout", o.readErr)
		}
	})
	t.Run("slow handler", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/webhooks/x", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		o := <-got
		if o.readErr != nil || o.cancelled || resp.StatusCode != http.StatusAccepted {
			t.Errorf("slow handler: read %v, cancelled %v, status %d; want the body, no cancellation, 202", o.readErr, o.cancelled, resp.StatusCode)
		}
	})
}
