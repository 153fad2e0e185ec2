package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testIssuer is an OpenID Connect issuer in the test process: discovery,
// JWKS, an authorization endpoint that grants at once, and a token
// endpoint that checks the client secret and the PKCE verifier and signs
// an ID token with a test RSA key. Its knobs spoil the ID token.
type testIssuer struct {
	t      testing.TB
	srv    *httptest.Server
	key    *rsa.PrivateKey
	secret string
	now    func() time.Time

	mu    sync.Mutex
	codes map[string]grant
	// claims are added to every ID token; badNonce, audience and
	// lifetime spoil it.
	claims   map[string]any
	badNonce bool
	audience string
	lifetime time.Duration
	otherKey *rsa.PrivateKey
}

type grant struct{ nonce, challenge, redirect, clientID string }

func newTestIssuer(t testing.TB, secret string, now func() time.Time) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{t: t, key: key, secret: secret, now: now, codes: map[string]grant{}, lifetime: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := is.srv.URL
		writeJSON(w, http.StatusOK, map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize",
			"token_endpoint": u + "/token", "jwks_uri": u + "/jwks", "response_types_supported": []string{"code"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &is.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
			http.Error(w, "want a code flow with nonce and PKCE S256", http.StatusBadRequest)
			return
		}
		code, _ := randomString(16)
		is.mu.Lock()
		is.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), clientID: q.Get("client_id")}
		is.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", is.token)
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	is.mu.Lock()
	g, found := is.codes[r.PostForm.Get("code")]
	delete(is.codes, r.PostForm.Get("code"))
	is.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case secret != is.secret || id != g.clientID:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case !found || r.PostForm.Get("redirect_uri") != g.redirect:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verifier"})
		return
	}
	is.mu.Lock()
	now := is.now()
	claims := map[string]any{"iss": is.srv.URL, "sub": "u-1", "aud": g.clientID, "iat": now.Unix(),
		"exp": now.Add(is.lifetime).Unix(), "nonce": g.nonce}
	if is.badNonce {
		claims["nonce"] = "not-the-nonce"
	}
	if is.audience != "" {
		claims["aud"] = is.audience
	}
	for k, v := range is.claims {
		claims[k] = v
	}
	key := is.key
	if is.otherKey != nil {
		key = is.otherKey
	}
	is.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		is.t.Error(err)
		return
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		is.t.Error(err)
		return
	}
	raw, _ := jws.CompactSerialize()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": "at-not-used", "token_type": "Bearer", "expires_in": 3600, "id_token": raw})
}

const oidcSecret = "oidc-client-Secret-5c1f"

func newOIDCHarness(t testing.TB, mod func(*OIDCConfig)) (*harness, *testIssuer) {
	t.Helper()
	var is *testIssuer
	var h *harness
	now := func() time.Time { return h.clock.now() }
	is = newTestIssuer(t, oidcSecret, func() time.Time { return now() })
	// The harness's server URL is known only once it runs: the
	// redirect URL is set on the running service below.
	h = newHarness(t, func(c *Config) {
		c.OIDC = &OIDCConfig{Issuer: is.srv.URL, ClientID: "gantry", ClientSecret: oidcSecret, RedirectURL: "http://placeholder/auth/oidc/callback",
			RoleClaim: "groups", RoleMap: map[string]Role{"sre": RoleOncallLead, "dev": RoleDeveloper, "ops-admins": RoleAdmin}}
		if mod != nil {
			mod(c.OIDC)
		}
	})
	h.svc.oidc.oauth.RedirectURL = h.srv.URL + "/auth/oidc/callback"
	return h, is
}

// oidcLogin runs the browser's side of a single sign-on: start, follow
// the issuer's redirect, call back with the state cookie. It returns the
// callback's answer.
func (h *harness) oidcLogin(cookieState func(string) string) *http.Response {
	h.t.Helper()
	var m Methods
	if err := json.NewDecoder(h.do("GET", "/auth/methods", "", "", nil).Body).Decode(&m); err != nil || !m.OIDC {
		h.t.Fatalf("GET /auth/methods = %+v, %v; want OIDC offered", m, err)
	}
	start := h.do("GET", "/auth/oidc/login", "", "", nil)
	if start.StatusCode != http.StatusFound {
		h.t.Fatalf("start: status %d, want 302", start.StatusCode)
	}
	var state string
	for _, c := range start.Cookies() {
		if c.Name == oidcStateCookie {
			state = c.Value
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(start.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		h.t.Fatalf("issuer authorize: status %d", resp.StatusCode)
	}
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	if cookieState != nil {
		state = cookieState(state)
	}
	return h.do("GET", cb.RequestURI(), "", "", map[string]string{"Cookie": oidcStateCookie + "=" + state})
}

func TestOIDCLogin(t *testing.T) {
	h, is := newOIDCHarness(t, nil)
	is.claims = map[string]any{"preferred_username": "carol", "groups": []string{"dev", "sre"}}
	resp := h.oidcLogin(nil)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("callback: status %d %s, want 200", resp.StatusCode, b)
	}
	var sid string
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			sid = c.Value
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", c)
			}
		}
	}
	if sid == "" {
		t.Fatal("callback set no session cookie")
	}
	got := h.do("GET", "/act/"+string(ActionApprove), "", "", map[string]string{"Cookie": SessionCookie + "=" + sid})
	var who map[string]string
	if err := json.NewDecoder(got.Body).Decode(&who); err != nil || got.StatusCode != http.StatusOK {
		t.Fatalf("approve as carol: status %d, %v", got.StatusCode, err)
	}
	if who["user"] != "carol" || who["role"] != string(RoleOncallLead) || who["method"] != string(MethodOIDC) {
		t.Errorf("identity %v, want carol, oncall-lead (strongest of dev and sre), oidc", who)
	}
	if got := h.do("GET", "/act/"+string(ActionUsersManage), "", "", map[string]string{"Cookie": SessionCookie + "=" + sid}); got.StatusCode != http.StatusForbidden {
		t.Errorf("users.manage as an oncall-lead: status %d, want 403", got.StatusCode)
	}
	// The secret never shows.
	h.mu.Lock()
	all := strings.Join(h.bodies, "\n")
	h.mu.Unlock()
	if strings.Contains(all, oidcSecret) || strings.Contains(h.logs.String(), oidcSecret) {
		t.Error("the client secret appears in an answer or the log")
	}
}

func TestOIDCRefused(t *testing.T) {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spoil func(*testIssuer, *harness)
		state func(string) string
		want  string
	}{
		{"wrong nonce", func(is *testIssuer, _ *harness) { is.badNonce = true }, nil, "nonce"},
		{"wrong audience", func(is *testIssuer, _ *harness) { is.audience = "someone-else" }, nil, "audience"},
		{"expired", func(is *testIssuer, _ *harness) { is.lifetime = -time.Minute }, nil, "expired"},
		{"wrong signing key", func(is *testIssuer, _ *harness) { is.otherKey = other }, nil, "not valid"},
		{"state of another browser", nil, func(string) string { return "forged" }, "state"},
		{"no role", func(is *testIssuer, _ *harness) { is.claims["groups"] = []string{"marketing"} }, nil, "no role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, is := newOIDCHarness(t, nil)
			is.claims = map[string]any{"preferred_username": "carol", "groups": []string{"dev"}}
			if tt.spoil != nil {
				tt.spoil(is, h)
			}
			resp := h.oidcLogin(tt.state)
			var e errorJSON
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(e.Error.Message, tt.want) {
				t.Errorf("callback: status %d %q, want 403 saying %q", resp.StatusCode, e.Error.Message, tt.want)
			}
			for _, c := range resp.Cookies() {
				if c.Name == SessionCookie && c.Value != "" {
					t.Error("a refused login set a session cookie")
				}
			}
		})
	}
	t.Run("default role", func(t *testing.T) {
		h, is := newOIDCHarness(t, func(c *OIDCConfig) { c.DefaultRole = RoleViewer })
		is.claims = map[string]any{"email": "dan@example.com", "groups": []string{"marketing"}}
		if resp := h.oidcLogin(nil); resp.StatusCode != http.StatusOK {
			t.Errorf("callback: status %d, want 200 (viewer by default)", resp.StatusCode)
		}
	})
	t.Run("replayed callback", func(t *testing.T) {
		h, is := newOIDCHarness(t, nil)
		is.claims = map[string]any{"preferred_username": "carol", "groups": []string{"dev"}}
		start := h.do("GET", "/auth/oidc/login", "", "", nil)
		var state string
		for _, c := range start.Cookies() {
			if c.Name == oidcStateCookie {
				state = c.Value
			}
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(start.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb, _ := url.Parse(resp.Header.Get("Location"))
		first := h.do("GET", cb.RequestURI(), "", "", map[string]string{"Cookie": oidcStateCookie + "=" + state})
		again := h.do("GET", cb.RequestURI(), "", "", map[string]string{"Cookie": oidcStateCookie + "=" + state})
		if first.StatusCode != http.StatusOK || again.StatusCode != http.StatusForbidden {
			t.Errorf("callback twice: statuses %d, %d; want 200, 403", first.StatusCode, again.StatusCode)
		}
	})
}

func TestOIDCConfig(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		cfg  OIDCConfig
	}{
		{"no secret", OIDCConfig{Issuer: "http://x", ClientID: "c", RedirectURL: "http://r", RoleClaim: "groups"}},
		{"nobody could log in", OIDCConfig{Issuer: "http://x", ClientID: "c", ClientSecret: "s", RedirectURL: "http://r"}},
		{"bad role", OIDCConfig{Issuer: "http://x", ClientID: "c", ClientSecret: "s", RedirectURL: "http://r", DefaultRole: "root"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newOIDCLogin(ctx, &Service{now: time.Now}, tt.cfg); err == nil {
				t.Error("newOIDCLogin succeeded, want an error")
			}
		})
	}
	m, err := ParseRoleMap("sre=oncall-lead, dev=developer")
	if err != nil || m["sre"] != RoleOncallLead || m["dev"] != RoleDeveloper {
		t.Errorf("ParseRoleMap = %v, %v", m, err)
	}
	if _, err := ParseRoleMap("sre"); err == nil {
		t.Error("ParseRoleMap(sre) succeeded, want an error")
	}
}
