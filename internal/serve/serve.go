// Package serve is the long-lived gantry process of a state dir and its
// client. The process (Run) owns what must outlive `gantry run`: the
// environment controller (a runtime.Deployer with a lifecycle) and the
// embedded registry. It serves an HTTP/JSON API under /api/v1/ on the
// Unix socket STATE_DIR/gantry.sock, for the user who runs it only (as
// admin), and with Config.Listen on TCP too, behind package auth (tcp.go).
// The client (Dial, Ensure) implements runtime.Deployer over the socket.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// Deployer is what the process exposes: the environment controller with
// its lifecycle. Run reconciles until its ctx ends; Close releases what
// the controller holds once no request uses it any more.
type Deployer interface {
	runtime.Deployer
	Run(ctx context.Context) error
	Close(ctx context.Context) error
}

// Config configures Run.
type Config struct {
	// StateDir is the state dir the process serves (required).
	StateDir string
	// Deployer is the environment controller to expose (required).
	Deployer Deployer
	// Roller runs the environments' blue/green rollouts (usually the
	// same controller); nil: the rollout endpoints answer 501.
	Roller runtime.Roller
	// Runs serves the run history under /api/v1/runs; nil: those
	// endpoints answer 501.
	Runs *Runs
	// Verification is which keys and registries the evidence endpoint
	// checks images with.
	Verification Verification
	// Version is reported by the health endpoint.
	Version string
	// RunQueue serves the run queue's endpoints under the API (POST
	// /api/v1/runs, POST /api/v1/runs/{id}/cancel, GET
	// /api/v1/queue/{id}, POST /api/v1/queue/{id}/retry: internal/queue's
	// HTTP); nil: they answer 404.
	RunQueue http.Handler
	// Background, if set, runs beside the server once it holds the state
	// dir (the run queue's workers), until the server stops; Run waits
	// for it to return before it releases the state dir.
	Background func(ctx context.Context)
	// Logger receives the process's logs (default: discarded).
	Logger *slog.Logger
	// ShutdownGrace bounds how long requests in flight get to finish
	// when the process stops (default 30s).
	ShutdownGrace time.Duration

	// Listen is a TCP address (HOST:PORT) to serve on besides the
	// socket, for browsers and remote CLIs; empty: the socket only.
	// Without TLSCert/TLSKey it must be a loopback address (CheckListen).
	Listen string
	// TLSCert and TLSKey are PEM files of the listener's certificate
	// (chain) and key.
	TLSCert, TLSKey string
	// Auth authenticates the TCP listener's requests and serves its
	// login endpoints (required with Listen).
	Auth *auth.Service
	// Webhooks serves /webhooks/ on the TCP listener, authenticated by
	// the deliveries' own HMAC signatures (internal/webhook); nil: 404.
	Webhooks http.Handler

	// noRegistry leaves the embedded registry out (tests of the API).
	noRegistry bool
	// ready is called once the API is served (a test hook).
	ready func()
	// tcpAddr is called with the TCP listener's address (a test hook).
	tcpAddr func(net.Addr)
}

// maxSocketPath is the longest path a Unix socket address holds
// (sun_path is 108 bytes with its terminating NUL).
const maxSocketPath = 107

// Run is the serve process of cfg.StateDir. It takes the state dir's
// serve lock (an *AlreadyRunningError when another process holds it),
// hosts the embedded registry, runs the deployer and serves the API on
// the socket until ctx ends or a client asks it to shut down. It then
// stops accepting, lets requests in flight finish (following log streams
// end), stops the deployer and closes it, stops the registry, removes
// the socket and releases the lock.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.StateDir == "" {
		return errors.New("serve: no state dir")
	}
	if cfg.Deployer == nil {
		return errors.New("serve: no deployer")
	}
	if cfg.Listen != "" && cfg.Auth == nil {
		return errors.New("serve: a TCP listener needs its authentication (Config.Auth)")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	grace := cfg.ShutdownGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	stateDir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("serve: state dir: %w", err)
	}
	if err := checkDir(stateDir); err != nil {
		return err
	}
	lk, err := tryLock(stateDir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := lk.release(); rerr != nil && err == nil {
			err = fmt.Errorf("serve: release the lock: %w", rerr)
		}
	}()
	// The socket goes first, so that a client never finds a socket of a
	// process that no longer holds the lock.
	ln, err := listen(stateDir)
	if err != nil {
		return err
	}
	sock := SocketPath(stateDir)
	defer os.Remove(sock)
	var (
		tcpLn  net.Listener
		tlsCfg *tls.Config
	)
	if cfg.Listen != "" {
		if tcpLn, tlsCfg, err = listenTCP(cfg.Listen, cfg.TLSCert, cfg.TLSKey); err != nil {
			ln.Close()
			return err
		}
	}

	// Cleanup gets a context that survives the cancellation that stopped
	// the process.
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), grace)
	}

	var regAddr string
	if !cfg.noRegistry {
		reg, rerr := registry.ServeState(context.WithoutCancel(ctx), stateDir, logger)
		if rerr != nil {
			ln.Close()
			if tcpLn != nil {
				tcpLn.Close()
			}
			return fmt.Errorf("serve: start the embedded registry: %w", rerr)
		}
		regAddr = reg.Addr()
		defer func() {
			cctx, cancel := cleanup()
			defer cancel()
			if cerr := reg.Close(cctx); cerr != nil && err == nil {
				err = fmt.Errorf("serve: stop the embedded registry: %w", cerr)
			}
		}()
	}

	stopping, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	var once sync.Once
	requested := make(chan struct{})
	shutdown := func() { once.Do(func() { close(requested) }) }

	started := time.Now()
	pid := os.Getpid()
	health := func() Health {
		return Health{Pid: pid, Version: cfg.Version, StateDir: stateDir, Started: started.UTC(), Uptime: time.Since(started).Seconds(), Registry: regAddr}
	}
	api := NewAPI(cfg.Deployer, health, shutdown, stopping, logger)
	api.SetRoller(cfg.Roller)
	if cfg.Runs != nil {
		runs := *cfg.Runs
		if runs.Images == nil && regAddr != "" {
			runs.Images = newRegistryChecker(stateDir, regAddr, cfg.Verification)
		}
		api.SetRuns(runs)
	}
	api.SetRunQueue(cfg.RunQueue)
	srv := &http.Server{
		Handler:           RequireUser(os.Getuid(), logger, socketIdentity(api.Handler())),
		ConnContext:       peerContext,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	runDone := make(chan error, 1)
	go func() { runDone <- cfg.Deployer.Run(runCtx) }()
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		if cfg.Background != nil {
			cfg.Background(runCtx)
		}
	}()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()

	// The TCP listener, when asked for: it ends with the socket's server.
	var tcpSrv *http.Server
	tcpDone := make(chan error, 1)
	if tcpLn != nil {
		tcpSrv = newTCPServer(TCPHandler(cfg.Auth, api.Handler(), api.Probes(), cfg.Webhooks), logger, tlsCfg)
		go func() { tcpDone <- tcpSrv.Serve(tcpLn) }()
		if cfg.tcpAddr != nil {
			cfg.tcpAddr(tcpLn.Addr())
		}
		logger.Info("gantry serve listening on TCP", "addr", tcpLn.Addr().String(), "tls", tlsCfg != nil)
	}

	if cfg.ready != nil {
		cfg.ready()
	}
	logger.Info("gantry serve listening", "socket", sock, "pid", pid, "registry", regAddr, "state_dir", stateDir)

	var (
		runErr, srvErr, tcpErr error
		runEnded               bool
		srvEnded, tcpEnded     bool
	)
	select {
	case <-ctx.Done():
		logger.Info("gantry serve stopping", "reason", context.Cause(ctx))
	case <-requested:
		logger.Info("gantry serve stopping", "reason", "shutdown requested")
	case runErr = <-runDone:
		runEnded = true
		if runErr == nil {
			runErr = errors.New("the deployer stopped")
		}
		runErr = fmt.Errorf("serve: deployer: %w", runErr)
		logger.Error("gantry serve stopping", "reason", runErr)
	case srvErr = <-srvDone:
		srvEnded = true
		srvErr = fmt.Errorf("serve: %w", srvErr)
		logger.Error("gantry serve stopping", "reason", srvErr)
	case tcpErr = <-tcpDone:
		tcpEnded = true
		tcpErr = fmt.Errorf("serve: TCP listener: %w", tcpErr)
		logger.Error("gantry serve stopping", "reason", tcpErr)
	}

	// Stop accepting, end log streams that follow, let the rest finish.
	stop()
	sctx, scancel := cleanup()
	var shutdowns sync.WaitGroup
	for _, s := range []*http.Server{srv, tcpSrv} {
		if s == nil {
			continue
		}
		shutdowns.Go(func() {
			if serr := s.Shutdown(sctx); serr != nil {
				logger.Warn("requests still in flight after the grace period; closing them", "grace", grace)
				_ = s.Close()
			}
		})
	}
	shutdowns.Wait()
	scancel()
	if !srvEnded {
		if e := <-srvDone; !errors.Is(e, http.ErrServerClosed) {
			srvErr = fmt.Errorf("serve: %w", e)
		}
	}
	if tcpSrv != nil && !tcpEnded {
		if e := <-tcpDone; !errors.Is(e, http.ErrServerClosed) {
			tcpErr = fmt.Errorf("serve: TCP listener: %w", e)
		}
	}
	cancelRun()
	<-bgDone
	if !runEnded {
		if e := <-runDone; e != nil && !errors.Is(e, context.Canceled) {
			runErr = fmt.Errorf("serve: deployer: %w", e)
		}
	}
	cctx, ccancel := cleanup()
	defer ccancel()
	closeErr := cfg.Deployer.Close(cctx)
	if closeErr != nil {
		closeErr = fmt.Errorf("serve: close the deployer: %w", closeErr)
	}
	logger.Info("gantry serve stopped", "pid", pid)
	return errors.Join(runErr, srvErr, tcpErr, closeErr)
}

// checkDir refuses a state dir that other users may write to: they could
// replace the socket.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("serve: state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("serve: state dir %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("serve: state dir %s is writable by every user (mode %v); gantry serve will not put its socket there (chmod o-w %s)", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// listen creates the socket at SocketPath(stateDir), mode 0600 from the
// first instant it can be reached: it is bound inside a fresh 0700
// directory, chmodded, then renamed into place, which atomically replaces
// a stale socket of a process that died (the caller holds the lock, so
// no live process owns it). The process umask is left alone: other
// goroutines may be creating files.
func listen(stateDir string) (net.Listener, error) {
	sock := SocketPath(stateDir)
	if len(sock) > maxSocketPath {
		return nil, fmt.Errorf("serve: socket path %s is %d bytes, over the %d a Unix socket allows; use a shorter --state-dir", sock, len(sock), maxSocketPath)
	}
	tmp, err := os.MkdirTemp(stateDir, ".s")
	if err != nil {
		return nil, fmt.Errorf("serve: create the socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	p := filepath.Join(tmp, "s")
	if len(p) > maxSocketPath {
		return nil, fmt.Errorf("serve: socket path %s is %d bytes, over the %d a Unix socket allows; use a shorter --state-dir", p, len(p), maxSocketPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("serve: listen on %s: %w", sock, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("serve: chmod the socket: %w", err)
	}
	if err := os.Rename(p, sock); err != nil {
		ln.Close()
		return nil, fmt.Errorf("serve: put the socket at %s: %w", sock, err)
	}
	return ln, nil
}
