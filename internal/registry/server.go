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
		if err == nil {
			err = recordAddr(filepath.Dir(stateFile), s.Addr())
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

// ServeState starts the embedded registry of stateDir for a long-lived
// process (gantry serve): on the address earlier registries of stateDir
// used when it is free, else on a free loopback port, with the address
// recorded in StateFile so that Ensure in other processes uses this
// registry instead of starting their own.
func ServeState(ctx context.Context, stateDir string, logger *slog.Logger) (*Server, error) {
	pref := filepath.Join(stateDir, "registry", "addr")
	addr := "127.0.0.1:0"
	if b, err := os.ReadFile(pref); err == nil && strings.TrimSpace(string(b)) != "" {
		addr = strings.TrimSpace(string(b))
	}
	s, err := Serve(ctx, Root(stateDir), addr, StateFile(stateDir), logger)
	if err != nil && addr != "127.0.0.1:0" {
		s, err = Serve(ctx, Root(stateDir), "127.0.0.1:0", StateFile(stateDir), logger)
	}
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(pref, []byte(s.Addr())); err != nil {
		_ = s.Close(ctx)
		return nil, fmt.Errorf("registry: record the address: %w", err)
	}
	return s, nil
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
		if err := recordAddr(filepath.Dir(pref), s.Addr()); err != nil {
			_ = s.Close(sctx)
			return "", nil, fmt.Errorf("registry: %w", err)
		}
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

// addrsFile lists, one per line, every address an embedded registry of a
// state dir has served on; regDir is STATE_DIR/registry.
func addrsFile(regDir string) string { return filepath.Join(regDir, "addrs") }

// recordAddr adds addr to the addresses the embedded registry served on.
// Lines are appended (one write each), so processes recording at once do
// not lose each other's.
func recordAddr(regDir, addr string) error {
	for _, a := range readAddrs(regDir) {
		if a == addr {
			return nil
		}
	}
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		return fmt.Errorf("record address: %w", err)
	}
	f, err := os.OpenFile(addrsFile(regDir), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("record address: %w", err)
	}
	if _, err := f.WriteString(addr + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("record address: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record address: %w", err)
	}
	return nil
}

func readAddrs(regDir string) []string {
	b, err := os.ReadFile(addrsFile(regDir))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// ownAddrs returns the addresses the embedded registry of stateDir has
// served on: those recorded in the state dir (addrs, the serving
// registry's serve.json and the preferred address of earlier state dirs)
// and the one a run hands steps in GANTRY_REGISTRY.
func ownAddrs(stateDir string, env []string) []string {
	regDir := filepath.Join(stateDir, "registry")
	out := readAddrs(regDir)
	if b, err := os.ReadFile(StateFile(stateDir)); err == nil {
		var st state
		if json.Unmarshal(b, &st) == nil && st.Addr != "" {
			out = append(out, st.Addr)
		}
	}
	if b, err := os.ReadFile(filepath.Join(regDir, "addr")); err == nil {
		if a := strings.TrimSpace(string(b)); a != "" {
			out = append(out, a)
		}
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, EnvAddr+"="); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// sameAddr compares host:port addresses, taking localhost as 127.0.0.1.
func sameAddr(a, b string) bool {
	norm := func(s string) string {
		if rest, ok := strings.CutPrefix(s, "localhost:"); ok {
			return "127.0.0.1:" + rest
		}
		return s
	}
	return norm(a) == norm(b)
}

// IsEmbedded reports whether the image reference ref names the embedded
// registry of stateDir: a loopback address it has served on (see
// ownAddrs). Another registry on a loopback address, such as a user's own
// localhost:5000, is not the embedded one.
func IsEmbedded(stateDir string, env []string, ref string) bool {
	if !IsLoopback(ref) {
		return false
	}
	host, _, _ := strings.Cut(ref, "/")
	for _, a := range ownAddrs(stateDir, env) {
		if sameAddr(host, a) {
			return true
		}
	}
	return false
}

// EnsureFor makes the image reference image reachable for a step. An image
// on an address the embedded registry served on (IsEmbedded) was pushed to
// the embedded registry, which may have stopped with the step that pushed
// it: Ensure runs it again and the reference is returned on its current
// address, with insecure set (plain HTTP). Other references, including
// other registries on loopback addresses, are returned unchanged (insecure
// for loopback ones). stop ends what EnsureFor started.
func EnsureFor(ctx context.Context, stateDir string, env []string, logger *slog.Logger, image string) (ref string, insecure bool, stop func(context.Context) error, err error) {
	if !IsEmbedded(stateDir, env, image) {
		return image, IsLoopback(image), func(context.Context) error { return nil }, nil
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
