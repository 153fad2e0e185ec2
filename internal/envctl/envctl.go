// Package envctl is the environment controller that `gantry serve` hosts:
// it implements runtime.Deployer. Every environment has a proxy on a port
// fixed at its first deploy, the services its spec names (kept for its
// life) and a history of revisions in the store. What an environment
// should run — its desired state — is the store's record, written before
// anything starts; Run brings the machine to it at start and keeps it
// there, so a serve process killed at any point carries on from the record
// (see docs/environments.md).
package envctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/proxy"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/store"
)

// Store is what the controller records in: *store.Store satisfies it.
type Store interface {
	CreateEnvironment(ctx context.Context, name string, port int) (store.Environment, error)
	Environment(ctx context.Context, name string) (store.Environment, error)
	Environments(ctx context.Context) ([]store.Environment, error)
	AddEnvRevision(ctx context.Context, r *store.EnvRevision) error
	SetEnvRevisionStatus(ctx context.Context, env string, number int, status, message string) error
	ServeEnvRevision(ctx context.Context, env string, number int) error
	EnvRevisions(ctx context.Context, env string) ([]store.EnvRevision, error)
	EnvRevision(ctx context.Context, env string, number int) (store.EnvRevision, error)
	LockEnvironment(name string) (unlock func(), err error)

	PreviewPort(ctx context.Context, env string, port int) (int, error)
	PutRollout(ctx context.Context, r *store.Rollout) error
	Rollout(ctx context.Context, env string) (store.Rollout, error)
	AddRolloutEvent(ctx context.Context, e *store.RolloutEvent) error
	RolloutEvents(ctx context.Context, env string) ([]store.RolloutEvent, error)
}

var _ Store = (*store.Store)(nil)

// Config is what New needs.
type Config struct {
	Store    Store
	Runtime  runtime.Runtime
	Admitter runtime.Admitter
	// Services are the providers of the services an environment may name
	// (postgres, redis, sqs).
	Services map[string]service.Provider
	// Dir holds the environments' files: Dir/NAME/instances/ID (an
	// instance's directory, its log in Dir/NAME/instances/ID/log) and
	// Dir/NAME/services/KIND (a service's data).
	Dir string
	// ProxyHost is the address the proxies listen on; default 127.0.0.1.
	ProxyHost string
	// Interval is how often Run reconciles; default 2s.
	Interval time.Duration
	Logger   *slog.Logger

	// InstanceEnv, when set, gives variables added to the environment of
	// every instance of env (the webhook sink's address and secret); an
	// error keeps the instances from starting.
	InstanceEnv func(ctx context.Context, env string) ([]string, error)
	// Describe, when set, adds to an environment's status what the
	// controller does not know itself (its sink and Prometheus URLs).
	Describe func(env string, st *runtime.EnvironmentStatus)
	// Serving, when set, is told the host:port of env's ready serving
	// instances and the spec of the revision they run whenever they may
	// have changed (a deploy switched to them, a reconcile pass), so that
	// the environment's Prometheus scrapes them. Its error is logged; it
	// fails nothing.
	Serving func(ctx context.Context, env string, spec runtime.EnvironmentSpec, addrs []string) error
	// ServingServices, when set, is called instead of Serving with the
	// ready instances grouped by the Service they are behind (a rollout's
	// activeService and previewService), so that the environment's
	// Prometheus labels them service="NAME" and an AnalysisTemplate's
	// query on the preview Service measures green.
	ServingServices func(ctx context.Context, env string, spec runtime.EnvironmentSpec, groups []ServiceTargets) error
	// Monitor, when set, runs a rollout's synthetic monitors against
	// baseURL (the active URL) after promotion, calling report with every
	// result, until ctx ends (serve wires monitor.Run). Without it a
	// rollout with monitors is refused.
	Monitor func(ctx context.Context, baseURL string, ms []runtime.Monitor, report func(runtime.MonitorResult))
	// AgentURLs maps an environment to the URL probe agents on other
	// machines check (gantry serve --agent-url ENV=URL): the address of
	// its active proxy as the network outside reaches it. An environment
	// without one is given its active URL as this process has it.
	AgentURLs map[string]string
}

// Controller is the environment controller. It is safe for concurrent use.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	envs   map[string]*env
	closed bool

	// stopping ends when Close starts: deploys and reconciles in progress
	// give up then.
	stopping context.Context
	stop     context.CancelFunc
	// drivers are the rollout drivers running (rollout.go); Close waits
	// for them.
	drivers sync.WaitGroup
}

var _ runtime.Deployer = (*Controller)(nil)

// env is what the controller runs for one environment.
type env struct {
	name string
	port int

	// op is held by whoever changes the environment in this process (a
	// deploy, a reconcile, Close): a semaphore of one.
	op chan struct{}
	// deploying is set while a deploy waits for op or holds it; guarded
	// by Controller.mu.
	deploying bool

	// The fields below are written with op held and read under mu.
	mu        sync.Mutex
	proxy     *proxy.Proxy
	services  map[string]service.Instance
	svcEnv    []string
	rev       int // the revision whose instances run (0: none)
	instances []runtime.Instance

	// Blue/green rollouts (rollout.go): the preview port once known, and
	// the rollout machinery, made at first use.
	previewPort int
	bgOnce      sync.Once
	bgState     *blueGreen
}

// New checks cfg and returns a controller; nothing starts before Deploy or
// Run.
func New(cfg Config) (*Controller, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("environment controller: no store")
	case cfg.Runtime == nil:
		return nil, errors.New("environment controller: no runtime")
	case cfg.Admitter == nil:
		return nil, errors.New("environment controller: no admitter (admission is not optional)")
	case cfg.Dir == "":
		return nil, errors.New("environment controller: no directory")
	}
	if cfg.ProxyHost == "" {
		cfg.ProxyHost = "127.0.0.1"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("environment controller: %w", err)
	}
	cfg.Dir = abs
	stopping, stop := context.WithCancel(context.Background())
	return &Controller{cfg: cfg, log: cfg.Logger, envs: map[string]*env{}, stopping: stopping, stop: stop}, nil
}

// bound returns ctx, also cancelled when Close starts.
func (c *Controller) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(c.stopping, cancel)
	return ctx, func() {
		unhook()
		cancel()
	}
}

// ErrClosed is returned by calls after Close. It is runtime.ErrClosed, so
// that clients across the serve socket can tell it too.
var ErrClosed = runtime.ErrClosed

// url is the address of the proxy listening on port.
func (c *Controller) url(port int) string {
	return "http://" + net.JoinHostPort(c.cfg.ProxyHost, strconv.Itoa(port))
}

// env returns the in-memory environment, creating it for a recorded one.
func (c *Controller) env(e store.Environment) (*env, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	en, ok := c.envs[e.Name]
	if !ok {
		en = &env{name: e.Name, port: e.Port, services: map[string]service.Instance{}, op: make(chan struct{}, 1)}
		c.envs[e.Name] = en
	}
	if e.PreviewPort != 0 {
		en.mu.Lock()
		en.previewPort = e.PreviewPort
		en.mu.Unlock()
	}
	return en, nil
}

// errBusy is returned by lock when a reconcile finds the environment
// taken.
var errBusy = errors.New("environment busy")

// lock takes the environment for an operation, in this process and in the
// store (the store's lock excludes other processes). A deploy waits for a
// reconcile in progress but not for another deploy: that one gives
// runtime.ErrDeployInProgress at once, as an environment locked by another
// process does. A reconcile (deploy false) never waits: errBusy.
func (c *Controller) lock(ctx context.Context, en *env, deploy bool) (unlock func(), err error) {
	if deploy {
		c.mu.Lock()
		busy := en.deploying
		en.deploying = true
		c.mu.Unlock()
		if busy {
			return nil, fmt.Errorf("environment %s: %w", en.name, runtime.ErrDeployInProgress)
		}
	}
	done := func() {
		if deploy {
			c.mu.Lock()
			en.deploying = false
			c.mu.Unlock()
		}
	}
	if deploy {
		select {
		case en.op <- struct{}{}:
		case <-ctx.Done():
			done()
			return nil, fmt.Errorf("environment %s: %w", en.name, ctx.Err())
		}
	} else {
		select {
		case en.op <- struct{}{}:
		default:
			return nil, errBusy
		}
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		<-en.op
		done()
		return nil, ErrClosed
	}
	sunlock, err := c.cfg.Store.LockEnvironment(en.name)
	if err != nil {
		<-en.op
		done()
		if errors.Is(err, store.ErrEnvLocked) {
			if !deploy {
				return nil, errBusy
			}
			return nil, fmt.Errorf("environment %s (in another gantry process): %w", en.name, runtime.ErrDeployInProgress)
		}
		return nil, err
	}
	return func() {
		sunlock()
		<-en.op
		done()
	}, nil
}

// ensureProxy starts the environment's proxy on its port if it does not
// run yet.
func (c *Controller) ensureProxy(en *env) error {
	en.mu.Lock()
	defer en.mu.Unlock()
	if en.proxy != nil {
		return nil
	}
	p := proxy.New(en.name, c.log)
	if err := p.Listen(net.JoinHostPort(c.cfg.ProxyHost, strconv.Itoa(en.port))); err != nil {
		return &PortError{Environment: en.name, Port: en.port, Err: err}
	}
	en.proxy = p
	return nil
}

// PortError says that an environment's proxy cannot listen on the port
// recorded for it (another program holds it).
type PortError struct {
	Environment string
	Port        int
	Err         error
}

func (e *PortError) Error() string {
	return fmt.Sprintf("environment %s: its proxy port %d is not free: %v", e.Environment, e.Port, e.Err)
}

func (e *PortError) Unwrap() error { return e.Err }

// freePort picks a port for a new environment's proxy.
func (c *Controller) freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(c.cfg.ProxyHost, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a port for the proxy: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
