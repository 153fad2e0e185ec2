package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// EnvAddr names the environment variable through which the engine hands
// steps the address of the embedded registry it runs.
const EnvAddr = "GANTRY_REGISTRY"

// Server is a running embedded registry.
type Server struct {
	h         *Handler
	srv       *http.Server
	ln        net.Listener
	stateFile string
	done      chan error
}

// Root returns the registry's data directory under gantry's state dir.
func Root(stateDir string) string { return filepath.Join(stateDir, "registry", "data") }

// StateFile is where a serving registry records its address.
func StateFile(stateDir string) string { return filepath.Join(stateDir, "registry", "serve.json") }

type state struct {
	Addr string `json:"addr"`
	Pid  int    `json:"pid"`
}

// Serve starts a registry on addr ("127.0.0.1:0" for a free port) with its
// content under root. When stateFile is set, the address is written there
// so that other gantry processes find it (see Ensure); it is removed on
// Close.
func Serve(ctx context.Context, root, addr, stateFile string, logger *slog.Logger) (*Server, error) {
	h, err := NewHandler(ctx, root, logger)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("registry: listen on %s: %w", addr, err)
	}
	s := &Server{
		h:         h,
		srv:       &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second},
		ln:        ln,
		stateFile: stateFile,
		done:      make(chan error, 1),
	}
	if stateFile != "" {
		b, _ := json.Marshal(state{Addr: s.Addr(), Pid: os.Getpid()})
		if err := os.MkdirAll(filepath.Dir(stateFile), 0o755); err == nil {
			err = writeFileAtomic(stateFile, b)
		}
		if err != nil {
			ln.Close()
			_ = h.Close()
			return nil, fmt.Errorf("registry: write state file: %w", err)
		}
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is host:port the registry listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, waiting for requests in flight until ctx is done.
func (s *Server) Close(ctx context.Context) error {
	if s.stateFile != "" {
		_ = os.Remove(s.stateFile)
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Connections that never became idle (a client's spare
		// keep-alive connections) are cut once ctx is done.
		err = s.srv.Close()
	}
	if serr := <-s.done; err == nil {
		err = serr
	}
	if herr := s.h.Close(); err == nil {
		err = herr
	}
	return err
}

// Ensure returns the address of a running embedded registry: the one named
// by GANTRY_REGISTRY in env, else one recorded in the state file that
// answers, else the one this process already runs for stateDir, else a new
// one started in this process on a free loopback port with its content
// under stateDir. stop releases it; the registry this process started stops
// when the last caller released it. Steps running at the same time thus
// share one registry on one address, and the address stays the one earlier
// runs used, so that image references (host:port/repo@digest) in step
// outputs and cache keys stay valid.
func Ensure(ctx context.Context, stateDir string, env []string, logger *slog.Logger) (addr string, stop func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, EnvAddr+"="); ok && v != "" {
			return v, noop, nil
		}
	}
	if b, err := os.ReadFile(StateFile(stateDir)); err == nil {
		var st state
		if json.Unmarshal(b, &st) == nil && st.Addr != "" && Ping(ctx, st.Addr) == nil {
			return st.Addr, noop, nil
		}
	}
	return inProcess.acquire(ctx, stateDir, logger)
}

// inProcess holds the embedded registries this process runs, by state
// dir. It is process-wide state on purpose: a registry owns a port, and
// every step of a run lives in the one process.
var inProcess = &shared{running: map[string]*sharedServer{}}

type shared struct {
	mu      sync.Mutex
	running map[string]*sharedServer
}

type sharedServer struct {
	s    *Server
	refs int
}

func (sh *shared) acquire(ctx context.Context, stateDir string, logger *slog.Logger) (string, func(context.Context) error, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ss := sh.running[stateDir]
	if ss == nil {
		// Prefer the address an earlier in-process registry had.
		pref := filepath.Join(stateDir, "registry", "addr")
		addr := "127.0.0.1:0"
		if b, err := os.ReadFile(pref); err == nil && strings.TrimSpace(string(b)) != "" {
			addr = strings.TrimSpace(string(b))
		}
		// The registry outlives the context of the step that started it.
		sctx := context.WithoutCancel(ctx)
		s, err := Serve(sctx, Root(stateDir), addr, "", logger)
		if err != nil && addr != "127.0.0.1:0" {
			s, err = Serve(sctx, Root(stateDir), "127.0.0.1:0", "", logger)
		}
		if err != nil {
			return "", nil, err
		}
		_ = os.MkdirAll(filepath.Dir(pref), 0o755)
		_ = writeFileAtomic(pref, []byte(s.Addr()))
		ss = &sharedServer{s: s}
		sh.running[stateDir] = ss
	}
	ss.refs++
	var once sync.Once
	release := func(ctx context.Context) error {
		var err error
		once.Do(func() {
			sh.mu.Lock()
			defer sh.mu.Unlock()
			if ss.refs--; ss.refs == 0 {
				delete(sh.running, stateDir)
				err = ss.s.Close(ctx)
			}
		})
		return err
	}
	return ss.s.Addr(), release, nil
}

// Ping checks that addr serves the distribution API (GET /v2/).
func Ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry at %s: GET /v2/: %s", addr, resp.Status)
	}
	return nil
}

// IsLoopback reports whether the image reference ref (HOST[:PORT]/REPO...)
// names a registry on a loopback address, as the embedded registry is.
func IsLoopback(ref string) bool {
	host, _, ok := strings.Cut(ref, "/")
	if !ok {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// EnsureFor makes the image reference image reachable for a step. An image
// on a loopback registry was pushed to the embedded registry, which may
// have stopped with the step that pushed it: Ensure runs it again and the
// reference is returned on its current address, with insecure set (plain
// HTTP). Other references are returned unchanged. stop ends what EnsureFor
// started.
func EnsureFor(ctx context.Context, stateDir string, env []string, logger *slog.Logger, image string) (ref string, insecure bool, stop func(context.Context) error, err error) {
	if !IsLoopback(image) {
		return image, false, func(context.Context) error { return nil }, nil
	}
	addr, stop, err := Ensure(ctx, stateDir, env, logger)
	if err != nil {
		return "", false, nil, fmt.Errorf("embedded registry: %w", err)
	}
	if host, rest, ok := strings.Cut(image, "/"); ok && host != addr {
		image = addr + "/" + rest
	}
	return image, true, stop, nil
}
