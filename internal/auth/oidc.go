package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gantry-ci/gantry/internal/store"
)

// OIDCConfig configures single sign-on with an OpenID Connect issuer
// (authorization code flow with state, nonce and PKCE S256).
type OIDCConfig struct {
	// Issuer is the issuer URL (discovery at
	// ISSUER/.well-known/openid-configuration).
	Issuer string
	// ClientID and ClientSecret are the client's registration at the
	// issuer. The secret is never logged.
	ClientID, ClientSecret string
	// RedirectURL is this server's callback as registered at the issuer:
	// https://HOST/auth/oidc/callback.
	RedirectURL string
	// Scopes asked besides openid (default profile, email, groups).
	Scopes []string
	// UserClaim names the claim that becomes the user name (default:
	// preferred_username, else email, else sub).
	UserClaim string
	// RoleClaim names the claim (a string or a list of strings, e.g.
	// groups) whose values map to roles through RoleMap; the strongest
	// mapped role wins.
	RoleClaim string
	RoleMap   map[string]Role
	// DefaultRole is the role of a user none of whose claim values map
	// to a role; empty refuses such a login.
	DefaultRole Role
	// HTTPClient reaches the issuer (default: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
}

// oidcPendingTTL is how long a started login may take at the issuer.
const oidcPendingTTL = 10 * time.Minute

// maxPending bounds the logins started and not finished.
const maxPending = 10000

// oidcStateCookie binds a login's state to the browser that started it.
// SameSite=Lax, for the issuer's redirect back is a cross-site navigation.
const oidcStateCookie = "__Host-gantry_oidc"

type oidcLogin struct {
	s        *Service
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client

	mu      sync.Mutex
	pending map[string]pendingLogin
}

type pendingLogin struct {
	nonce, verifier string
	expires         time.Time
}

func newOIDCLogin(ctx context.Context, s *Service, cfg OIDCConfig) (*oidcLogin, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: the issuer, client id and redirect URL are required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("oidc: the client secret is empty")
	}
	if cfg.RoleClaim == "" && cfg.DefaultRole == "" {
		return nil, errors.New("oidc: no role claim and no default role: nobody could log in")
	}
	if cfg.DefaultRole != "" {
		if _, err := ParseRole(string(cfg.DefaultRole)); err != nil {
			return nil, fmt.Errorf("oidc: default role: %w", err)
		}
	}
	for v, r := range cfg.RoleMap {
		if _, err := ParseRole(string(r)); err != nil {
			return nil, fmt.Errorf("oidc: role map %q: %w", v, err)
		}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	pctx := oidc.ClientContext(ctx, client)
	provider, err := oidc.NewProvider(pctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover the issuer %s: %w", cfg.Issuer, err)
	}
	scopes := cfg.Scopes
	if scopes == nil {
		scopes = []string{"profile", "email", "groups"}
	}
	o := &oidcLogin{s: s, cfg: cfg, client: client, pending: map[string]pendingLogin{},
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: provider.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, scopes...)},
		verifier: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: s.now}),
	}
	return o, nil
}

// oidcStart sends the browser to the issuer with a fresh state, nonce
// and PKCE challenge.
func (s *Service) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := s.oidc
	if o == nil {
		writeError(w, http.StatusNotFound, "not_found", "single sign-on is not configured on this server (gantry serve --oidc-issuer)")
		return
	}
	state, err1 := randomString(tokenBytes)
	nonce, err2 := randomString(tokenBytes)
	if err := errors.Join(err1, err2); err != nil {
		s.log.Error("start an OIDC login", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "starting the login failed on the server")
		return
	}
	verifier := oauth2.GenerateVerifier()
	now := s.now()
	o.mu.Lock()
	for k, p := range o.pending {
		if !now.Before(p.expires) {
			delete(o.pending, k)
		}
	}
	full := len(o.pending) >= maxPending
	if !full {
		o.pending[state] = pendingLogin{nonce: nonce, verifier: verifier, expires: now.Add(oidcPendingTTL)}
	}
	o.mu.Unlock()
	if full {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusServiceUnavailable, "rate_limited", "too many single sign-on logins in progress; try again in a minute")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: state, Path: "/", MaxAge: int(oidcPendingTTL / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, o.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// OIDCError is a refused single sign-on: what the user is told.
type OIDCError struct{ Reason string }

func (e *OIDCError) Error() string { return "single sign-on refused: " + e.Reason }

// oidcCallback finishes a login: it checks the state against the
// browser's cookie, exchanges the code with the PKCE verifier, verifies
// the ID token (signature, issuer, audience, expiry) and its nonce, maps
// the claims to a user and role, and starts a session.
func (s *Service) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := s.oidc
	if o == nil {
		writeError(w, http.StatusNotFound, "not_found", "single sign-on is not configured on this server (gantry serve --oidc-issuer)")
		return
	}
	ctx := r.Context()
	addr := remoteAddr(r)
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	user, role, err := o.finish(ctx, r)
	if err != nil {
		var oe *OIDCError
		if !errors.As(err, &oe) {
			s.log.Error("finish an OIDC login", "err", err)
			writeError(w, http.StatusBadGateway, "oidc", "single sign-on failed talking to the issuer")
			return
		}
		s.audit(ctx, &store.AuditEntry{Actor: user, Action: "login.failed", Subject: user, Detail: auditDetail(addr, http.StatusForbidden, string(MethodOIDC))})
		s.log.Info("refused an OIDC login", "user", user, "remote", addr, "reason", oe.Reason)
		writeError(w, http.StatusForbidden, "login_failed", oe.Error())
		return
	}
	if _, err := s.startSession(ctx, w, user, MethodOIDC, role); err != nil {
		s.log.Error("start a session", "user", user, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "login failed on the server")
		return
	}
	s.audit(ctx, &store.AuditEntry{Actor: user, Action: "login", Subject: user, Detail: auditDetail(addr, http.StatusOK, string(MethodOIDC))})
	// The browser came here from the issuer (cross-site), so a redirect
	// would not carry the SameSite=Strict cookie on its first request: a
	// page on this site navigates on instead.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	_, _ = fmt.Fprint(w, `<!doctype html><meta http-equiv="refresh" content="0;url=/"><title>gantry</title><a href="/">Logged in: continue</a>`)
}

// finish returns the user and role of the callback r, or an *OIDCError
// saying why it is refused; the user is set when it is known.
func (o *oidcLogin) finish(ctx context.Context, r *http.Request) (string, Role, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return "", "", &OIDCError{Reason: "the issuer answered " + truncate(e, 64)}
	}
	state, code := q.Get("state"), q.Get("code")
	c, err := r.Cookie(oidcStateCookie)
	if err != nil || state == "" || code == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return "", "", &OIDCError{Reason: "the login's state does not match this browser's (start again at /auth/oidc/login)"}
	}
	o.mu.Lock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	o.mu.Unlock()
	if !ok || !o.s.now().Before(p.expires) {
		return "", "", &OIDCError{Reason: "the login expired or was already used (start again at /auth/oidc/login)"}
	}
	tok, err := o.oauth.Exchange(oidc.ClientContext(ctx, o.client), code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return "", "", &OIDCError{Reason: fmt.Sprintf("the issuer refused the code (HTTP %d)", re.Response.StatusCode)}
		}
		return "", "", fmt.Errorf("exchange the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return "", "", &OIDCError{Reason: "the issuer's answer has no ID token"}
	}
	idt, err := o.verifier.Verify(oidc.ClientContext(ctx, o.client), raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return "", "", &OIDCError{Reason: "the ID token expired"}
		}
		// go-oidc's message names what failed (audience, issuer,
		// signature) and never holds the token.
		return "", "", &OIDCError{Reason: "the ID token is not valid: " + truncate(err.Error(), 200)}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.nonce)) != 1 {
		return "", "", &OIDCError{Reason: "the ID token's nonce is not this login's"}
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", "", &OIDCError{Reason: "the ID token's claims are unreadable"}
	}
	user := printable(o.userName(claims), 200)
	if user == "" {
		return "", "", &OIDCError{Reason: "the ID token has no usable user name claim"}
	}
	if err := ValidUserName(user); err != nil {
		return "", "", &OIDCError{Reason: err.Error()}
	}
	role := o.role(claims)
	if role == "" {
		return user, "", &OIDCError{Reason: fmt.Sprintf("no role for %s: none of its %q claim values maps to a role, and logins without one are refused", user, o.cfg.RoleClaim)}
	}
	return user, role, nil
}

func (o *oidcLogin) userName(claims map[string]any) string {
	names := []string{"preferred_username", "email", "sub"}
	if o.cfg.UserClaim != "" {
		names = []string{o.cfg.UserClaim}
	}
	for _, n := range names {
		if v, ok := claims[n].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// role maps the role claim's values through RoleMap: the strongest
// mapped role, else DefaultRole.
func (o *oidcLogin) role(claims map[string]any) Role {
	var vals []string
	switch v := claims[o.cfg.RoleClaim].(type) {
	case string:
		vals = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				vals = append(vals, s)
			}
		}
	}
	var best Role
	for _, v := range vals {
		if r, ok := o.cfg.RoleMap[v]; ok && (best == "" || r.AtLeast(best)) {
			best = r
		}
	}
	if best == "" {
		return o.cfg.DefaultRole
	}
	return best
}

// ParseRoleMap reads "value=role,value=role" (the --oidc-role-map flag).
func ParseRoleMap(s string) (map[string]Role, error) {
	m := map[string]Role{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("role map entry %q: want CLAIM_VALUE=ROLE", kv)
		}
		r, err := ParseRole(v)
		if err != nil {
			return nil, fmt.Errorf("role map entry %q: %w", kv, err)
		}
		m[k] = r
	}
	return m, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
