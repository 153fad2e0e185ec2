package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/internal/store"
)

// SessionCookie is the name of the session cookie. The __Host- prefix
// makes browsers refuse it unless it is Secure, for path / and without a
// Domain, so a sibling host cannot plant one.
const SessionCookie = "__Host-gantry_session"

// CSRFHeader carries a session's CSRF token on state-changing requests
// authenticated by the session cookie.
const CSRFHeader = "X-CSRF-Token"

// Defaults of Config.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
)

// maxLoginBody bounds a login request.
const maxLoginBody = 64 << 10

// Config configures a Service.
type Config struct {
	// Store holds users, tokens, sessions and the audit log (required).
	Store *store.Store
	// Logger receives the service's logs (default: discarded). No
	// password, token, session id or client secret is ever logged.
	Logger *slog.Logger
	// SessionIdle ends a session unused for that long (default 30m);
	// SessionMax ends every session that long after login (default 12h).
	SessionIdle, SessionMax time.Duration
	// Origins are the origins (scheme://host[:port]) browsers reach the
	// server at, checked against the Origin header of state-changing
	// cookie requests and logins. Empty: the origin the request itself
	// was sent to (https, or http on a plain loopback listener).
	Origins []string
	// UserLimit and AddrLimit rate-limit login attempts per user name
	// and per source address (zero: DefaultUserLimit, DefaultAddrLimit).
	UserLimit, AddrLimit RateLimit
	// OIDC enables single sign-on when set.
	OIDC *OIDCConfig
	// Argon2 hashes passwords rehashed at login (zero: DefaultArgon2).
	Argon2 Argon2Params

	// now is the clock (tests).
	now func() time.Time
}

// Service authenticates requests to the server's TCP listener: API
// tokens (Authorization: Bearer), session cookies with CSRF protection,
// password login with rate limits, OIDC single sign-on; and audits every
// state-changing request.
type Service struct {
	store     *store.Store
	log       *slog.Logger
	idle, max time.Duration
	origins   map[string]bool
	users     *limiter
	addrs     *limiter
	anon      *limiter
	oidc      *oidcLogin
	argon2    Argon2Params
	now       func() time.Time
	dummyHash string
	// hashing bounds the argon2id computations at once (each takes its
	// memory parameter, 64 MiB by default), so a burst of logins from
	// many addresses cannot exhaust the server's memory.
	hashing chan struct{}
}

// New returns the service of cfg; with OIDC configured it discovers the
// issuer (ctx bounds that).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: no store")
	}
	s := &Service{store: cfg.Store, log: cfg.Logger, idle: cfg.SessionIdle, max: cfg.SessionMax,
		origins: map[string]bool{}, argon2: cfg.Argon2, now: cfg.now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.idle <= 0 {
		s.idle = DefaultSessionIdle
	}
	if s.max <= 0 {
		s.max = DefaultSessionMax
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.argon2 == (Argon2Params{}) {
		s.argon2 = DefaultArgon2
	}
	for _, o := range cfg.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("auth: origin %q: want scheme://host[:port]", o)
		}
		s.origins[u.Scheme+"://"+strings.ToLower(u.Host)] = true
	}
	ul, al := cfg.UserLimit, cfg.AddrLimit
	if ul.Burst <= 0 || ul.Every <= 0 {
		ul = DefaultUserLimit
	}
	if al.Burst <= 0 || al.Every <= 0 {
		al = DefaultAddrLimit
	}
	s.users, s.addrs, s.anon = newLimiter(ul), newLimiter(al), newLimiter(anonAuditLimit)
	// A login of an unknown user still spends an argon2id computation,
	// so its answer takes as long as a wrong password's.
	dummy, err := HashPassword([]byte("unknown user"), s.argon2)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.dummyHash = dummy
	s.hashing = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	if cfg.OIDC != nil {
		o, err := newOIDCLogin(ctx, s, *cfg.OIDC)
		if err != nil {
			return nil, err
		}
		s.oidc = o
	}
	return s, nil
}

// remoteAddr is the address a request came from, without its port.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Authenticate is the middleware of the API: it finds who sends r (an
// API token, else a session cookie, whose state-changing requests must
// carry the session's CSRF token and an allowed Origin), puts the
// Identity in the request's context (WithIdentity) and calls next;
// without one it answers 401.
func (s *Service) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.identify(r)
		if err != nil {
			var ae *authError
			if !errors.As(err, &ae) {
				s.log.Error("authenticate a request", "method", r.Method, "path", r.URL.Path, "err", err)
				writeError(w, http.StatusInternalServerError, "internal", "authenticate the request failed")
				return
			}
			if ae.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
			}
			writeError(w, ae.status, ae.code, ae.msg)
			return
		}
		noteIdentity(r.Context(), id)
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// authError is a refusal of the middleware: its status, code and what
// the client is told.
type authError struct {
	status int
	code   string
	msg    string
}

func (e *authError) Error() string { return e.msg }

func unauthenticated(msg string) error {
	return &authError{status: http.StatusUnauthorized, code: "unauthenticated", msg: msg}
}

func (s *Service) identify(r *http.Request) (Identity, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		return s.identifyToken(ctx, r, h)
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Identity{}, unauthenticated("not logged in: send Authorization: Bearer TOKEN (gantry token create) or log in at /login")
	}
	id, sessionID, err := s.identifySession(ctx, r, c.Value)
	if err != nil {
		return Identity{}, err
	}
	if !safeMethod(r.Method) {
		if err := s.checkOrigin(r); err != nil {
			return Identity{}, err
		}
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrfFor(sessionID))) != 1 {
			return Identity{}, &authError{status: http.StatusForbidden, code: "csrf",
				msg: "missing or wrong " + CSRFHeader + " header: a request with the session cookie that changes something must carry the session's CSRF token (from the login answer or GET /auth/session)"}
		}
	}
	return id, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkOrigin refuses a request whose Origin header is missing or not
// one the server is reached at.
func (s *Service) checkOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return &authError{status: http.StatusForbidden, code: "csrf", msg: "missing Origin header on a state-changing request with the session cookie"}
	}
	if !s.originAllowed(r, o) {
		return &authError{status: http.StatusForbidden, code: "csrf", msg: "cross-origin request refused: its Origin is not this server's"}
	}
	return nil
}

func (s *Service) originAllowed(r *http.Request, origin string) bool {
	o := strings.ToLower(origin)
	if len(s.origins) > 0 {
		return s.origins[o]
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return o == scheme+"://"+strings.ToLower(r.Host)
}

func (s *Service) identifyToken(ctx context.Context, r *http.Request, h string) (Identity, error) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !looksLikeToken(strings.TrimSpace(tok)) {
		return Identity{}, unauthenticated("Authorization header: want Bearer followed by a gantry token (" + TokenPrefix + "...)")
	}
	rec, err := s.store.TokenByHash(ctx, secretHash(strings.TrimSpace(tok)))
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, unauthenticated("unknown API token")
	}
	if err != nil {
		return Identity{}, err
	}
	now := s.now()
	if !rec.Revoked.IsZero() {
		return Identity{}, unauthenticated(fmt.Sprintf("API token %s was revoked", rec.ID))
	}
	if !rec.Expires.IsZero() && !now.Before(rec.Expires) {
		return Identity{}, unauthenticated(fmt.Sprintf("API token %s expired at %s", rec.ID, rec.Expires.UTC().Format(time.RFC3339)))
	}
	u, err := s.store.User(ctx, rec.User)
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, unauthenticated(fmt.Sprintf("API token %s: its user no longer exists", rec.ID))
	}
	if err != nil {
		return Identity{}, err
	}
	role, err := ParseRole(u.Role)
	if err != nil {
		return Identity{}, fmt.Errorf("user %s: %w", u.Name, err)
	}
	// Last use is recorded at most once a minute per token.
	if now.Sub(rec.LastUsed) > time.Minute {
		if err := s.store.TouchToken(ctx, rec.ID, now); err != nil {
			s.log.Warn("record the use of an API token", "token", rec.ID, "err", err)
		}
	}
	return Identity{Name: u.Name, Role: role, Method: MethodToken, Remote: remoteAddr(r), Location: rec.Location}, nil
}

// identifySession returns the identity of the session whose id is sid.
func (s *Service) identifySession(ctx context.Context, r *http.Request, sid string) (Identity, string, error) {
	hash := secretHash(sid)
	se, err := s.store.SessionByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, "", unauthenticated("session unknown or ended: log in again")
	}
	if err != nil {
		return Identity{}, "", err
	}
	now := s.now()
	if !now.Before(se.Expires) || now.Sub(se.LastSeen) >= s.idle {
		if err := s.store.DeleteSession(ctx, hash); err != nil {
			s.log.Warn("delete an expired session", "user", se.User, "err", err)
		}
		return Identity{}, "", unauthenticated("session expired: log in again")
	}
	var role Role
	switch Method(se.Method) {
	case MethodOIDC:
		role, err = ParseRole(se.Role)
	case MethodPassword:
		// A local user's role is read at each request, so a change
		// or removal applies at once.
		u, uerr := s.store.User(ctx, se.User)
		if errors.Is(uerr, store.ErrNotFound) {
			return Identity{}, "", unauthenticated("the session's user no longer exists")
		}
		if uerr != nil {
			return Identity{}, "", uerr
		}
		role, err = ParseRole(u.Role)
	default:
		err = fmt.Errorf("session method %q", se.Method)
	}
	if err != nil {
		return Identity{}, "", fmt.Errorf("session of %s: %w", se.User, err)
	}
	if now.Sub(se.LastSeen) > time.Minute {
		if err := s.store.TouchSession(ctx, hash, now); err != nil {
			s.log.Warn("record the use of a session", "user", se.User, "err", err)
		}
	}
	return Identity{Name: se.User, Role: role, Method: Method(se.Method), Remote: remoteAddr(r)}, sid, nil
}

// SessionInfo is what a login and GET /auth/session answer.
type SessionInfo struct {
	User   string `json:"user"`
	Role   Role   `json:"role"`
	Method Method `json:"method"`
	// CSRFToken goes in the X-CSRF-Token header of every state-changing
	// request the session makes.
	CSRFToken string    `json:"csrfToken"`
	Expires   time.Time `json:"expires"`
}

// startSession records a new session for user and sets its cookie.
func (s *Service) startSession(ctx context.Context, w http.ResponseWriter, user string, method Method, role Role) (SessionInfo, error) {
	sid, err := randomString(tokenBytes)
	if err != nil {
		return SessionInfo{}, fmt.Errorf("start a session: %w", err)
	}
	now := s.now().UTC()
	se := store.Session{Hash: secretHash(sid), User: user, Method: string(method), Created: now, LastSeen: now, Expires: now.Add(s.max)}
	if method == MethodOIDC {
		se.Role = string(role)
	}
	if _, err := s.store.DeleteExpiredSessions(ctx, now, now.Add(-s.idle)); err != nil {
		s.log.Warn("delete expired sessions", "err", err)
	}
	if err := s.store.AddSession(ctx, &se); err != nil {
		return SessionInfo{}, fmt.Errorf("start a session for %s: %w", user, err)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sid, Path: "/", Expires: se.Expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	return SessionInfo{User: user, Role: role, Method: method, CSRFToken: csrfFor(sid), Expires: se.Expires}, nil
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// Handler serves the login endpoints: POST /login, POST /logout, GET
// /auth/session, and with OIDC GET /auth/oidc/login and
// /auth/oidc/callback.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", s.postLogin)
	mux.HandleFunc("POST /logout", s.postLogout)
	mux.HandleFunc("GET /auth/session", s.getSession)
	mux.HandleFunc("GET /auth/methods", s.getMethods)
	mux.HandleFunc("GET /auth/oidc/login", s.oidcStart)
	mux.HandleFunc("GET /auth/oidc/callback", s.oidcCallback)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// loginRequest is the body of POST /login (JSON, or a form with the
// same fields).
type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// maxLoginName bounds the user name a failed login records.
const maxLoginName = 64

func (s *Service) postLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	addr := remoteAddr(r)
	if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(r, o) {
		writeError(w, http.StatusForbidden, "csrf", "cross-origin login refused: its Origin is not this server's")
		return
	}
	req, err := readLogin(w, r)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			writeError(w, ae.status, ae.code, ae.msg)
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	name := printable(req.User, maxLoginName)
	now := s.now()
	wait := s.addrs.take(addr, now)
	if d := s.users.take(strings.ToLower(name), now); d > wait {
		wait = d
	}
	if wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		s.auditAnon(ctx, addr, &store.AuditEntry{Actor: name, Action: "login.throttled", Subject: name, Detail: auditDetail(addr, http.StatusTooManyRequests, "")})
		s.log.Warn("login attempts rate-limited", "user", name, "remote", addr, "retry_after_s", secs)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		writeError(w, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("too many login attempts; try again in %d s", secs))
		return
	}
	u, role, ok, err := s.checkPassword(ctx, req.User, []byte(req.Password))
	if err != nil {
		s.log.Error("check a password", "user", name, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "login failed on the server")
		return
	}
	if !ok {
		s.audit(ctx, &store.AuditEntry{Actor: name, Action: "login.failed", Subject: name, Detail: auditDetail(addr, http.StatusUnauthorized, "")})
		s.log.Info("failed login", "user", name, "remote", addr)
		writeError(w, http.StatusUnauthorized, "login_failed", "wrong user name or password")
		return
	}
	info, err := s.startSession(ctx, w, u.Name, MethodPassword, role)
	if err != nil {
		s.log.Error("start a session", "user", u.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "login failed on the server")
		return
	}
	s.audit(ctx, &store.AuditEntry{Actor: u.Name, Action: "login", Subject: u.Name, Detail: auditDetail(addr, http.StatusOK, string(MethodPassword))})
	writeJSON(w, http.StatusOK, info)
}

// printable is s cut to n bytes with every character that is not
// printable replaced by '?': what an attacker typed as a user name goes
// to the audit log and the log without control characters.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// checkPassword checks pw against user's hash, rehashing it when its
// parameters are weaker than the service's.
func (s *Service) checkPassword(ctx context.Context, user string, pw []byte) (store.User, Role, bool, error) {
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-ctx.Done():
		return store.User{}, "", false, fmt.Errorf("wait to check a password: %w", context.Cause(ctx))
	}
	u, err := s.store.User(ctx, user)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.PasswordHash == "") {
		_, _ = VerifyPassword(s.dummyHash, pw)
		return store.User{}, "", false, nil
	}
	if err != nil {
		return store.User{}, "", false, err
	}
	ok, err := VerifyPassword(u.PasswordHash, pw)
	if err != nil || !ok {
		return store.User{}, "", false, err
	}
	role, err := ParseRole(u.Role)
	if err != nil {
		return store.User{}, "", false, fmt.Errorf("user %s: %w", u.Name, err)
	}
	if NeedsRehash(u.PasswordHash, s.argon2) {
		if h, err := HashPassword(pw, s.argon2); err == nil {
			if err := s.store.SetUserPassword(ctx, u.Name, h); err != nil {
				s.log.Warn("rehash a password with the current parameters", "user", u.Name, "err", err)
			}
		}
	}
	return u, role, true, nil
}

func readLogin(w http.ResponseWriter, r *http.Request) (loginRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	var req loginRequest
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return req, &authError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: fmt.Sprintf("login request larger than %d bytes", maxLoginBody)}
			}
			// The decoder's error may quote the body: say only where.
			return req, errors.New("decode the login request: malformed JSON; want {\"user\": ..., \"password\": ...}")
		}
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		if err := r.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return req, &authError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: fmt.Sprintf("login request larger than %d bytes", maxLoginBody)}
			}
			return req, errors.New("decode the login form: malformed")
		}
		req.User, req.Password = r.PostForm.Get("user"), r.PostForm.Get("password")
	default:
		return req, &authError{status: http.StatusUnsupportedMediaType, code: "bad_request", msg: "login request: want Content-Type application/json or application/x-www-form-urlencoded"}
	}
	if req.User == "" || req.Password == "" {
		return req, errors.New("login request: user and password are required")
	}
	return req, nil
}

func (s *Service) postLogout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		clearSessionCookie(w)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	id, err := s.identify(r)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
			// Already ended: nothing to protect.
			clearSessionCookie(w)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if errors.As(err, &ae) {
			writeError(w, ae.status, ae.code, ae.msg)
			return
		}
		s.log.Error("log out", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "logout failed on the server")
		return
	}
	noteIdentity(r.Context(), id)
	if err := s.store.DeleteSession(r.Context(), secretHash(c.Value)); err != nil {
		s.log.Error("end a session", "user", id.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "logout failed on the server")
		return
	}
	clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// Methods is what GET /auth/methods answers: the ways to log in, for
// the login page.
type Methods struct {
	Password bool `json:"password"`
	OIDC     bool `json:"oidc"`
}

func (s *Service) getMethods(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Methods{Password: true, OIDC: s.oidc != nil})
}

func (s *Service) getSession(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "not logged in")
		return
	}
	id, sid, err := s.identifySession(r.Context(), r, c.Value)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			writeError(w, ae.status, ae.code, ae.msg)
			return
		}
		s.log.Error("read a session", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "reading the session failed on the server")
		return
	}
	se, err := s.store.SessionByHash(r.Context(), secretHash(sid))
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "session ended: log in again")
		return
	}
	writeJSON(w, http.StatusOK, SessionInfo{User: id.Name, Role: id.Role, Method: id.Method, CSRFToken: csrfFor(sid), Expires: se.Expires})
}

// errorJSON is the error shape of the serve API ({"error": {"code",
// "message"}}), so clients read one shape.
type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var e errorJSON
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
