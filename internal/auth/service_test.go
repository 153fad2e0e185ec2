package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// clock is a settable clock for the service under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a Service on a real store, served over a real HTTP server:
// the login endpoints, and /act/{action} behind Authenticate, which asks
// Authorize for the action and answers its verdict. Everything a test
// sends and receives is kept, to search for secrets.
type harness struct {
	t      testing.TB
	st     *store.Store
	svc    *Service
	srv    *httptest.Server
	clock  *clock
	admin  *Admin
	logs   *syncbuf.Buffer
	mu     sync.Mutex
	bodies []string
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, st: st, clock: &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}, logs: &syncbuf.Buffer{}}
	cfg := Config{Store: st, Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Argon2: fastArgon2, now: h.clock.now}
	if mod != nil {
		mod(&cfg)
	}
	h.svc, err = New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.admin = &Admin{Store: st, Actor: "root", Argon2: fastArgon2, Now: h.clock.now}
	mux := http.NewServeMux()
	mux.Handle("/act/{action}", h.svc.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := Authorize(r.Context(), Action(r.PathValue("action")))
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, map[string]string{"user": id.Name, "role": string(id.Role), "method": string(id.Method)})
		case err == ErrUnauthenticated:
			writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
		default:
			writeError(w, http.StatusForbidden, "forbidden", err.Error())
		}
	})))
	mux.Handle("/", h.svc.Handler())
	h.srv = httptest.NewServer(h.svc.Audit(mux))
	t.Cleanup(h.srv.Close)
	return h
}

// origin is the Origin a browser on the test server sends.
func (h *harness) origin() string { return h.srv.URL }

// do sends a request; hdr holds extra headers ("Cookie", "Origin", ...).
func (h *harness) do(method, path, contentType, body string, hdr map[string]string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var hb strings.Builder
	for k, vs := range resp.Header {
		if k == "Set-Cookie" {
			continue // the one place a session id must go
		}
		hb.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	h.mu.Lock()
	h.bodies = append(h.bodies, hb.String()+string(b))
	h.mu.Unlock()
	return resp
}

func (h *harness) addUser(name string, role Role, pw string) {
	h.t.Helper()
	if err := h.admin.AddUser(context.Background(), name, role, []byte(pw)); err != nil {
		h.t.Fatalf("add user %s: %v", name, err)
	}
}

func (h *harness) token(user string, ttl time.Duration) (string, store.APIToken) {
	h.t.Helper()
	tok, rec, err := h.admin.CreateToken(context.Background(), user, "test", ttl)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok, rec
}

// login logs user in with a JSON body and returns the session cookie
// value and the answer.
func (h *harness) login(user, pw string) (string, SessionInfo) {
	h.t.Helper()
	b, _ := json.Marshal(loginRequest{User: user, Password: pw})
	resp := h.do("POST", "/login", "application/json", string(b), map[string]string{"Origin": h.origin()})
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("login %s: status %d %s", user, resp.StatusCode, body)
	}
	var info SessionInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				h.t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", c)
			}
			return c.Value, info
		}
	}
	h.t.Fatalf("login %s: no %s cookie", user, SessionCookie)
	return "", info
}

func status(resp *http.Response) int { return resp.StatusCode }

const annPW = "vellum-oxbow-Trident-48-quasar"

// TestEachRoleEachAction asks for every action as every role, with an
// API token, with a session and with a probe agent's token (bound to a
// location), through the real middleware: reporting monitors takes the
// agent's token, which may do nothing else.
func TestEachRoleEachAction(t *testing.T) {
	h := newHarness(t, nil)
	for _, role := range Roles() {
		name := "u-" + string(role)
		h.addUser(name, role, annPW)
		tok, _ := h.token(name, 0)
		agentTok, rec, err := h.admin.NewToken(context.Background(), name, TokenOptions{Label: "probe", Location: "eu-west"})
		if err != nil || rec.Location != "eu-west" {
			t.Fatalf("agent token: %+v, %v", rec, err)
		}
		sid, info := h.login(name, annPW)
		for _, a := range Actions() {
			want := http.StatusForbidden
			if role.Can(a) && a != ActionMonitorReport {
				want = http.StatusOK
			}
			wantAgent := http.StatusForbidden
			if role.Can(a) && a == ActionMonitorReport {
				wantAgent = http.StatusOK
			}
			t.Run(string(role)+"/"+string(a)+"/agent-token", func(t *testing.T) {
				resp := h.do("POST", "/act/"+string(a), "", "", map[string]string{"Authorization": "Bearer " + agentTok})
				if got := status(resp); got != wantAgent {
					t.Errorf("%s with a token bound to eu-west, %s: status %d, want %d", role, a, got, wantAgent)
				}
			})
			t.Run(string(role)+"/"+string(a)+"/token", func(t *testing.T) {
				resp := h.do("POST", "/act/"+string(a), "", "", map[string]string{"Authorization": "Bearer " + tok})
				if got := status(resp); got != want {
					t.Errorf("%s with a token, %s: status %d, want %d", role, a, got, want)
				}
			})
			t.Run(string(role)+"/"+string(a)+"/session", func(t *testing.T) {
				resp := h.do("POST", "/act/"+string(a), "", "", map[string]string{
					"Cookie": SessionCookie + "=" + sid, CSRFHeader: info.CSRFToken, "Origin": h.origin()})
				if got := status(resp); got != want {
					t.Errorf("%s with a session, %s: status %d, want %d", role, a, got, want)
				}
			})
		}
	}
	resp := h.do("GET", "/act/read", "", "", nil)
	if status(resp) != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: status %d, WWW-Authenticate %q; want 401 with a challenge", status(resp), resp.Header.Get("WWW-Authenticate"))
	}
}

func TestCSRF(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("ann", RoleAdmin, annPW)
	sid, info := h.login("ann", annPW)
	tok, _ := h.token("ann", 0)
	cookie := SessionCookie + "=" + sid
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
		want   int
	}{
		{"no token", "POST", map[string]string{"Cookie": cookie, "Origin": h.origin()}, http.StatusForbidden},
		{"wrong token", "POST", map[string]string{"Cookie": cookie, "Origin": h.origin(), CSRFHeader: csrfFor("another session")}, http.StatusForbidden},
		{"cross origin", "POST", map[string]string{"Cookie": cookie, "Origin": "https://evil.example", CSRFHeader: info.CSRFToken}, http.StatusForbidden},
		{"no origin", "POST", map[string]string{"Cookie": cookie, CSRFHeader: info.CSRFToken}, http.StatusForbidden},
		{"another session's token", "DELETE", map[string]string{"Cookie": cookie, "Origin": h.origin(), CSRFHeader: csrfFor(sid + "x")}, http.StatusForbidden},
		{"right", "POST", map[string]string{"Cookie": cookie, "Origin": h.origin(), CSRFHeader: info.CSRFToken}, http.StatusOK},
		{"read needs none", "GET", map[string]string{"Cookie": cookie}, http.StatusOK},
		{"bearer needs none", "POST", map[string]string{"Authorization": "Bearer " + tok, "Origin": "https://evil.example"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.do(tt.method, "/act/read", "", "", tt.hdr)
			if got := status(resp); got != tt.want {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("status %d (%s), want %d", got, b, tt.want)
			}
		})
	}
	// The session answers its CSRF token to a page that reloads.
	resp := h.do("GET", "/auth/session", "", "", map[string]string{"Cookie": cookie})
	var got SessionInfo
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.CSRFToken != info.CSRFToken || got.User != "ann" {
		t.Errorf("GET /auth/session = %+v, %v; want ann with the login's CSRF token", got, err)
	}
	// The login page learns which ways to log in there are.
	resp = h.do("GET", "/auth/methods", "", "", nil)
	var m Methods
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || !m.Password || m.OIDC {
		t.Errorf("GET /auth/methods = %+v, %v; want password only (no OIDC configured)", m, err)
	}
	// A cross-origin login is refused too (login CSRF).
	resp = h.do("POST", "/login", "application/x-www-form-urlencoded", url.Values{"user": {"ann"}, "password": {annPW}}.Encode(),
		map[string]string{"Origin": "https://evil.example"})
	if status(resp) != http.StatusForbidden {
		t.Errorf("cross-origin login: status %d, want 403", status(resp))
	}
}

func TestTokens(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.addUser("ann", RoleDeveloper, annPW)
	h.addUser("bob", RoleViewer, annPW)
	expiring, _ := h.token("ann", time.Hour)
	revoked, rec := h.token("ann", 0)
	if err := h.admin.RevokeToken(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	bobs, _ := h.token("bob", 0)
	if err := h.admin.RemoveUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	h.clock.advance(time.Hour)
	for _, tt := range []struct{ name, hdr string }{
		{"expired", "Bearer " + expiring},
		{"revoked", "Bearer " + revoked},
		{"user removed", "Bearer " + bobs},
		{"unknown", "Bearer " + TokenPrefix + strings.Repeat("A", 43)},
		{"not a token", "Bearer hunter2"},
		{"basic", "Basic YW5uOnB3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.do("GET", "/act/read", "", "", map[string]string{"Authorization": tt.hdr})
			if status(resp) != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", status(resp))
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		ok, _ := h.token("ann", 0)
		resp := h.do("GET", "/act/read", "", "", map[string]string{"Authorization": "Bearer " + ok})
		if status(resp) != http.StatusOK {
			t.Errorf("status %d, want 200", status(resp))
		}
	})
	// A role change applies to the next request.
	ok, _ := h.token("ann", 0)
	if err := h.admin.SetRole(ctx, "ann", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if resp := h.do("POST", "/act/"+string(ActionUsersManage), "", "", map[string]string{"Authorization": "Bearer " + ok}); status(resp) != http.StatusOK {
		t.Errorf("after the role change to admin: status %d, want 200", status(resp))
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SessionIdle = 30 * time.Minute; c.SessionMax = 2 * time.Hour })
	h.addUser("ann", RoleViewer, annPW)
	get := func(sid string) int {
		return status(h.do("GET", "/act/read", "", "", map[string]string{"Cookie": SessionCookie + "=" + sid}))
	}
	sid, _ := h.login("ann", annPW)
	h.clock.advance(31 * time.Minute)
	if got := get(sid); got != http.StatusUnauthorized {
		t.Errorf("after 31 min idle: status %d, want 401", got)
	}
	sid, _ = h.login("ann", annPW)
	for i := range 4 { // used every 25 min: never idle for 30
		h.clock.advance(25 * time.Minute)
		if got := get(sid); got != http.StatusOK {
			t.Fatalf("session used after %d min: status %d, want 200", 25*(i+1), got)
		}
	}
	h.clock.advance(21 * time.Minute) // 21 min idle, 2 h 1 min old
	if got := get(sid); got != http.StatusUnauthorized {
		t.Errorf("past the absolute expiry: status %d, want 401", got)
	}
	// Logout ends the session for good.
	sid, info := h.login("ann", annPW)
	resp := h.do("POST", "/logout", "", "", map[string]string{"Cookie": SessionCookie + "=" + sid, "Origin": h.origin(), CSRFHeader: info.CSRFToken})
	if status(resp) != http.StatusNoContent {
		t.Fatalf("logout: status %d, want 204", status(resp))
	}
	if got := get(sid); got != http.StatusUnauthorized {
		t.Errorf("after logout: status %d, want 401", got)
	}
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("ann", RoleViewer, annPW)
	form := func(user, pw string) int {
		return status(h.do("POST", "/login", "application/x-www-form-urlencoded", url.Values{"user": {user}, "password": {pw}}.Encode(), nil))
	}
	for i := range DefaultUserLimit.Burst {
		if got := form("ann", "wrong-password-"+strconv.Itoa(i)); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i+1, got)
		}
	}
	resp := h.do("POST", "/login", "application/json", `{"user":"ann","password":"`+annPW+`"}`, nil)
	if status(resp) != http.StatusTooManyRequests {
		t.Fatalf("attempt past the burst: status %d, want 429", status(resp))
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > int(DefaultUserLimit.Every/time.Second) {
		t.Errorf("Retry-After %q, want 1..%d seconds", resp.Header.Get("Retry-After"), int(DefaultUserLimit.Every/time.Second))
	}
	// Another user from the same address is not limited by ann's bucket.
	h.addUser("bob", RoleViewer, annPW)
	if got := form("bob", annPW); got != http.StatusOK {
		t.Errorf("bob's login while ann is limited: status %d, want 200", got)
	}
	h.clock.advance(DefaultUserLimit.Every)
	if got := form("ann", annPW); got != http.StatusOK {
		t.Errorf("ann's login after Retry-After: status %d, want 200", got)
	}
	// The address limit: many user names from one address.
	for i := range DefaultAddrLimit.Burst {
		form("nobody"+strconv.Itoa(i), "x")
	}
	if got := form("carol", "x"); got != http.StatusTooManyRequests {
		t.Errorf("past the address burst: status %d, want 429", got)
	}
	log, err := h.st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range log {
		counts[e.Action]++
		if strings.Contains(e.Detail, "wrong-password") || strings.Contains(e.Detail, annPW) {
			t.Errorf("audit entry %+v holds a password", e)
		}
	}
	if counts["login.failed"] < DefaultUserLimit.Burst || counts["login.throttled"] < 2 || counts["login"] != 2 {
		t.Errorf("audit actions %v, want >= %d login.failed, >= 2 login.throttled, 2 login", counts, DefaultUserLimit.Burst)
	}
}

func TestLoginBadInput(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name, ct, body string
		want           int
	}{
		{"malformed json", "application/json", `{"user":`, http.StatusBadRequest},
		{"unknown field", "application/json", `{"user":"a","password":"b","admin":true}`, http.StatusBadRequest},
		{"no password", "application/json", `{"user":"a"}`, http.StatusBadRequest},
		{"text", "text/plain", `user=a`, http.StatusUnsupportedMediaType},
		{"too large", "application/json", `{"user":"` + strings.Repeat("a", maxLoginBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"unknown user", "application/json", `{"user":"ghost","password":"boo"}`, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.do("POST", "/login", tt.ct, tt.body, nil)
			var e errorJSON
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Message == "" {
				t.Errorf("body is not an error answer: %v", err)
			}
			if status(resp) != tt.want {
				t.Errorf("status %d (%s), want %d", status(resp), e.Error.Message, tt.want)
			}
		})
	}
}

// TestAudit checks that state-changing requests are recorded with who,
// what, the status and the address, and reads are not.
func TestAudit(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("ann", RoleViewer, annPW)
	tok, _ := h.token("ann", 0)
	h.do("GET", "/act/read", "", "", map[string]string{"Authorization": "Bearer " + tok})
	h.do("POST", "/act/"+string(ActionDeploy), "", "", map[string]string{"Authorization": "Bearer " + tok})
	h.do("POST", "/act/"+string(ActionDeploy), "", "", nil)
	log, err := h.st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		if strings.HasPrefix(e.Action, "http.") {
			got = append(got, e.Actor+" "+e.Action+" "+e.Subject+" "+e.Detail)
		}
	}
	want := []string{
		` http.POST /act/environments.deploy {"remote":"127.0.0.1","status":401}`,
		`ann http.POST /act/environments.deploy {"remote":"127.0.0.1","status":403,"auth":"token"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestNoSecretsLeak runs a session of logins, token use, failed logins
// and logouts, then searches every answer (but its Set-Cookie) and the
// log for the passwords, tokens and session ids used.
func TestNoSecretsLeak(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("ann", RoleAdmin, annPW)
	tok, _ := h.token("ann", 0)
	revoked, rec := h.token("ann", 0)
	if err := h.admin.RevokeToken(context.Background(), rec.ID); err != nil {
		t.Fatal(err)
	}
	sid, info := h.login("ann", annPW)
	wrong := "Wrong-Secret-Password-77"
	h.do("POST", "/login", "application/json", `{"user":"ann","password":"`+wrong+`"}`, nil)
	h.do("POST", "/login", "application/json", `{"user":"ann","password":`, nil)
	h.do("POST", "/act/read", "", "", map[string]string{"Authorization": "Bearer " + tok})
	h.do("POST", "/act/read", "", "", map[string]string{"Authorization": "Bearer " + revoked})
	h.do("POST", "/act/read", "", "", map[string]string{"Cookie": SessionCookie + "=" + sid, "Origin": h.origin()})
	h.do("POST", "/logout", "", "", map[string]string{"Cookie": SessionCookie + "=" + sid, "Origin": h.origin(), CSRFHeader: info.CSRFToken})
	h.do("GET", "/act/read", "", "", map[string]string{"Cookie": SessionCookie + "=" + sid})
	secrets := map[string]string{"password": annPW, "wrong password": wrong, "token": tok, "revoked token": revoked, "session id": sid}
	h.mu.Lock()
	answers := strings.Join(h.bodies, "\n")
	h.mu.Unlock()
	logs := h.logs.String()
	entries, err := h.st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	audit, _ := json.Marshal(entries)
	for what, s := range secrets {
		for where, text := range map[string]string{"answers": answers, "log": logs, "audit log": string(audit)} {
			if strings.Contains(text, s) {
				t.Errorf("the %s appears in the %s", what, where)
			}
		}
	}
	if !strings.Contains(logs, "failed login") {
		t.Errorf("the log has no failed login: %s", logs)
	}
}

// FuzzLoginAndAuthenticate sends arbitrary login bodies and credentials:
// every answer is a JSON error or a login, never a panic or a 5xx.
func FuzzLoginAndAuthenticate(f *testing.F) {
	f.Add("application/json", `{"user":"ann","password":"x"}`, "Bearer gantry_x", "abc")
	f.Add("application/x-www-form-urlencoded", "user=ann&password=%zz", "Basic Zm9v", "")
	f.Add("application/json", `{"user":"ann","password":"x"} {}`, "bearer  "+TokenPrefix+strings.Repeat("A", 43), "\x00")
	h := newHarness(f, func(c *Config) {
		c.UserLimit = RateLimit{Every: time.Nanosecond, Burst: 1 << 30}
		c.AddrLimit = c.UserLimit
	})
	f.Fuzz(func(t *testing.T, ct, body, authz, cookie string) {
		for _, req := range []*http.Request{
			httptest.NewRequest("POST", "/login", strings.NewReader(body)),
			httptest.NewRequest("POST", "/act/read", strings.NewReader(body)),
			httptest.NewRequest("POST", "/logout", strings.NewReader(body)),
		} {
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", authz)
			req.AddCookie(&http.Cookie{Name: SessionCookie, Value: url.QueryEscape(cookie)})
			w := httptest.NewRecorder()
			h.srv.Config.Handler.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s: status %d %s", req.URL.Path, w.Code, w.Body)
			}
			if w.Code >= 400 {
				var e errorJSON
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
					t.Fatalf("%s: %d answer is not a JSON error: %q", req.URL.Path, w.Code, w.Body)
				}
			}
		}
	})
}

// TestPasswordChecksBounded: with every argon2id slot taken, a login
// waits for one (here until its context ends) instead of hashing.
func TestPasswordChecksBounded(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("ann", RoleViewer, annPW)
	for range cap(h.svc.hashing) {
		h.svc.hashing <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, ok, err := h.svc.checkPassword(ctx, "ann", []byte(annPW)); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("check with every slot taken: ok %v, error %v; want a wait ended by the context", ok, err)
	}
	<-h.svc.hashing
	if _, _, ok, err := h.svc.checkPassword(context.Background(), "ann", []byte(annPW)); !ok || err != nil {
		t.Errorf("check with a free slot: ok %v, error %v; want true, nil", ok, err)
	}
}

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ann", "ann"},
		{"ann\x1b[2J", "ann?[2J"},
		{"a\nb\x00", "a?b?"},
		{"\xffé", "?é"},
		{strings.Repeat("a", 100), strings.Repeat("a", 64)},
	} {
		if got := printable(tt.in, 64); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestAuditAnonymousBounded: requests without credentials are audited
// up to a rate per address, so knocking cannot fill the store.
func TestAuditAnonymousBounded(t *testing.T) {
	h := newHarness(t, nil)
	h.addUser("ann", RoleViewer, annPW)
	tok, _ := h.token("ann", 0)
	for range anonAuditLimit.Burst + 10 {
		h.do("POST", "/act/read", "", "", nil)
	}
	for range 5 {
		h.do("POST", "/act/read", "", "", map[string]string{"Authorization": "Bearer " + tok})
	}
	log, err := h.st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	anon, ann := 0, 0
	for _, e := range log {
		switch {
		case e.Action != "http.POST":
		case e.Actor == "":
			anon++
		case e.Actor == "ann":
			ann++
		}
	}
	if anon != anonAuditLimit.Burst || ann != 5 {
		t.Errorf("audited %d anonymous and %d of ann's requests, want %d and 5 (every authenticated one)", anon, ann, anonAuditLimit.Burst)
	}
}
