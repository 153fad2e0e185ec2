package serve

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/ui"
)

// ErrCleartextListen is a TCP listen address off the loopback interface
// without TLS: session cookies and API tokens must not cross a network
// in clear.
var ErrCleartextListen = errors.New("listening off loopback without TLS")

// Limits of the TCP listener against slow or greedy clients.
const (
	tcpReadHeaderTimeout = 10 * time.Second
	// tcpReadTimeout bounds reading a whole request, body included (at
	// most maxBody). net/http lifts it once the body is read, so
	// handlers that run longer (deploys waiting for readiness, log
	// streams) are not cut; answers are not bounded.
	tcpReadTimeout  = 60 * time.Second
	tcpIdleTimeout  = 2 * time.Minute
	tcpMaxHeader    = 64 << 10
	tcpMaxBodyBytes = maxBody
)

// CheckListen checks a --listen address: host:port, where the host may
// be empty (every interface) only with TLS, and must be a loopback
// address (or localhost) without it.
func CheckListen(addr string, withTLS bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: want HOST:PORT (e.g. 127.0.0.1:8080): %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("listen address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if withTLS {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q is not a loopback address and no --tls-cert/--tls-key are given: "+
		"session cookies and API tokens would cross the network in clear; serve TLS, or listen on 127.0.0.1 behind a TLS-terminating proxy: %w",
		addr, ErrCleartextListen)
}

// TCPHandler is the handler of the TCP listener: the audit of every
// state-changing request around a mux of /api/v1/ (a's middleware, then
// api), /webhooks/ (webhooks, authenticated by their own signatures;
// nil answers 404), a's login endpoints (/login, /logout, /auth/), and
// the probes /healthz and /readyz (API.Probes, without a login; nil
// leaves them to the web UI's 404).
func TCPHandler(a *auth.Service, api, probes, webhooks http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", a.Authenticate(api))
	if probes != nil {
		mux.Handle("GET /healthz", probes)
		mux.Handle("GET /readyz", probes)
	}
	if webhooks != nil {
		mux.Handle("/webhooks/", webhooks)
	} else {
		mux.HandleFunc("/webhooks/", func(w http.ResponseWriter, r *http.Request) {
			writeErrorBody(w, http.StatusNotFound, CodeNotFound, "this gantry serve receives no webhooks")
		})
	}
	login := a.Handler()
	// GET /login is the web UI's login page; the endpoints take POST.
	mux.Handle("POST /login", login)
	mux.Handle("POST /logout", login)
	mux.Handle("/auth/", login)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeErrorBody(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	// Everything else is the web UI: its files, and its pages' own paths.
	mux.Handle("/", ui.Handler())
	return a.Audit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > tcpMaxBodyBytes {
			writeErrorBody(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body larger than %d bytes", tcpMaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, tcpMaxBodyBytes)
		mux.ServeHTTP(w, r)
	}))
}

// newTCPServer is the http.Server of the TCP listener.
func newTCPServer(h http.Handler, logger *slog.Logger, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: tcpReadHeaderTimeout,
		ReadTimeout:       tcpReadTimeout,
		IdleTimeout:       tcpIdleTimeout,
		MaxHeaderBytes:    tcpMaxHeader,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// listenTCP listens on addr, with TLS from the certificate and key files
// when they are set.
func listenTCP(addr, certFile, keyFile string) (net.Listener, *tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, nil, errors.New("serve: --tls-cert and --tls-key go together")
	}
	withTLS := certFile != ""
	if err := CheckListen(addr, withTLS); err != nil {
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	var cfg *tls.Config
	if withTLS {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("serve: load the TLS certificate %s and key %s: %w", certFile, keyFile, err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: listen on %s: %w", addr, err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, cfg, nil
}

// socketIdentity gives requests of the Unix socket (which RequireUser
// let through: the state dir's owner or root) the identity of their
// peer: its operating system login, role admin.
func socketIdentity(next http.Handler) http.Handler {
	var (
		mu    sync.Mutex
		names = map[int]string{}
	)
	login := func(uid int) string {
		mu.Lock()
		defer mu.Unlock()
		if n, ok := names[uid]; ok {
			return n
		}
		n := "uid:" + strconv.Itoa(uid)
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
			n = u.Username
		}
		names[uid] = n
		return n
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PeerFromContext(r.Context())
		if !ok {
			writeErrorBody(w, http.StatusForbidden, CodeForbidden, "gantry serve: the peer's credentials are unknown")
			return
		}
		id := auth.Identity{Name: login(p.UID), Role: auth.RoleAdmin, Method: auth.MethodSocket, Remote: "unix"}
		next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	})
}

// authorize answers 401 or 403 and returns false unless the caller may
// do action.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, action auth.Action) (auth.Identity, bool) {
	id, err := auth.Authorize(r.Context(), action)
	if err == nil {
		return id, true
	}
	var fe *auth.ForbiddenError
	if errors.As(err, &fe) {
		writeErrorBody(w, http.StatusForbidden, CodeForbidden, fe.Error())
		return id, false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
	writeErrorBody(w, http.StatusUnauthorized, CodeUnauthenticated, err.Error())
	return id, false
}

// who is the name recorded as the author of a change: over the socket,
// what the request says (the state dir's owner's commands name the
// person or run they act for); over TCP, always the authenticated
// user's name, whatever the body claims.
func who(id auth.Identity, claimed string) string {
	if id.Method == auth.MethodSocket && claimed != "" {
		return claimed
	}
	return id.Name
}

// who is who(identity of r, claimed); withRoller has authorized r, so
// it carries an identity.
func (a *API) who(r *http.Request, claimed string) string {
	id, _ := auth.FromContext(r.Context())
	return who(id, claimed)
}
