package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/admission"
	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/envctl"
	"github.com/gantry-ci/gantry/internal/monitor"
	"github.com/gantry-ci/gantry/internal/promenv"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/runtime/local"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/sink"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/store"
)

// Exit codes of gantry serve and gantry env (sysexits values).
const (
	// ExitNotRunning: no gantry serve runs for the state dir (gantry env,
	// gantry serve status); sysexits' EX_UNAVAILABLE.
	ExitNotRunning = 69
	// ExitAlreadyRunning: another gantry serve holds the state dir (gantry
	// serve); sysexits' EX_CANTCREAT, its lock cannot be taken.
	ExitAlreadyRunning = 73
)

// newDeployer builds the environment controller the serve process
// exposes. It is the one place the delivery pieces are wired together:
// the store of the state dir, the local runtime under STATE_DIR/envs (runc
// when it works here, else plain processes, logged with the reason), the
// admission rules, the services steps may use, and the webhook sink that
// deployed services reach over TCP.
func newDeployer(ctx context.Context, stateDir, storeURL string, agentURLs map[string]string, logger *slog.Logger) (serve.Deployer, error) {
	st, err := store.Open(ctx, stateDir, store.WithLogger(logger), store.WithURL(storeURL))
	if err != nil {
		return nil, fmt.Errorf("open the store of %s: %w", stateDir, err)
	}
	d, err := buildDelivery(ctx, stateDir, st, agentURLs, logger)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return d, nil
}

// ensureServe reaches the environment controller of stateDir through
// serve.Ensure: the gantry serve process, started in the background when
// none runs.
func ensureServe(ctx context.Context, stateDir string) (runtime.Deployer, error) {
	c, err := serve.Ensure(ctx, stateDir)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// IsolationEnv, set to "process", makes gantry serve run instances as
// plain processes even where runc works.
const IsolationEnv = "GANTRY_ISOLATION"

func buildDelivery(ctx context.Context, stateDir string, st *store.Store, agentURLs map[string]string, logger *slog.Logger) (*delivery, error) {
	envDir := filepath.Join(stateDir, "envs")
	ropts := []local.Option{local.WithLogger(logger)}
	switch v := os.Getenv(IsolationEnv); v {
	case "", string(runtime.OCI):
	case string(runtime.Process):
		ropts = append(ropts, local.WithPlainProcesses())
	default:
		return nil, fmt.Errorf("%s=%q: want %q or %q", IsolationEnv, v, runtime.OCI, runtime.Process)
	}
	rt, err := local.New(ctx, filepath.Join(envDir, "runtime"), ropts...)
	if err != nil {
		return nil, fmt.Errorf("start the local runtime: %w", err)
	}
	if rt.Isolation() == runtime.OCI {
		logger.Info("environment instances run under runc", "isolation", rt.Isolation())
	} else {
		logger.Warn("environment instances run as plain processes: no isolation, limits or read-only root", "isolation", rt.Isolation(), "why", rt.Why())
	}
	adm, err := admission.New(admission.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	secrets := sink.FileSecrets{Dir: filepath.Join(stateDir, "sink"), Known: func(env string) bool {
		_, err := st.Environment(context.Background(), env)
		return err == nil
	}}
	sk, err := sink.New(secrets, sink.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("webhook sink: %w", err)
	}
	ln, err := listenSink(stateDir)
	if err != nil {
		return nil, err
	}
	d := &delivery{store: st, sinkLn: ln, sinkBase: "http://" + ln.Addr().String(), log: logger,
		proms: &prometheuses{dir: filepath.Join(envDir, "prometheus"), log: logger, servers: map[string]*promServer{}}}
	mux := http.NewServeMux()
	mux.Handle("/sink/", sk)
	d.sinkSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	d.Controller, err = envctl.New(envctl.Config{
		Store: st, Runtime: rt, Admitter: adm, Services: builtin.Services(), Dir: envDir, Logger: logger,
		InstanceEnv: func(ctx context.Context, env string) ([]string, error) {
			return sink.InstanceEnv(ctx, secrets, d.sinkBase, env)
		},
		Describe: func(env string, s *runtime.EnvironmentStatus) {
			s.SinkURL = d.sinkBase + "/sink/" + env
			s.PrometheusURL = d.proms.url(env)
		},
		ServingServices: d.proms.serving,
		// Monitors run from this process: location "local"; agents on
		// other machines check AgentURLs (gantry monitor agent).
		Monitor:   monitor.Run,
		AgentURLs: agentURLs,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	logger.Info("webhook sink listening", "addr", ln.Addr().String())
	return d, nil
}

// listenSink listens for the webhook sink on the loopback address it had
// before (recorded in STATE_DIR/sink/addr, so that instances started
// earlier keep reaching it), or on a new port when that one is taken.
func listenSink(stateDir string) (net.Listener, error) {
	dir := filepath.Join(stateDir, "sink")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("webhook sink: %w", err)
	}
	rec := filepath.Join(dir, "addr")
	if b, err := os.ReadFile(rec); err == nil {
		if ln, err := net.Listen("tcp", strings.TrimSpace(string(b))); err == nil {
			return ln, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook sink: listen: %w", err)
	}
	err = os.WriteFile(rec+".tmp", []byte(ln.Addr().String()+"\n"), 0o600)
	if err == nil {
		err = os.Rename(rec+".tmp", rec)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("webhook sink: record its address: %w", err)
	}
	return ln, nil
}

// delivery is the serve process's deployer: the environment controller,
// the store it records in and the webhook sink's server.
type delivery struct {
	*envctl.Controller
	store    *store.Store
	proms    *prometheuses
	sinkSrv  *http.Server
	sinkLn   net.Listener
	sinkBase string
	log      *slog.Logger
}

var (
	_ serve.Deployer = (*delivery)(nil)
	_ runtime.Roller = (*delivery)(nil)
)

// Run serves the sink and reconciles the environments until ctx ends.
func (d *delivery) Run(ctx context.Context) error {
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- d.sinkSrv.Serve(d.sinkLn) }()
	err := d.Controller.Run(ctx)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := d.sinkSrv.Shutdown(sctx); serr != nil {
		_ = d.sinkSrv.Close()
	}
	if serr := <-sinkDone; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("webhook sink: %w", serr))
	}
	return err
}

// Close stops the environments, then closes the store.
func (d *delivery) Close(ctx context.Context) error {
	err := d.Controller.Close(ctx)
	_ = d.sinkSrv.Close()
	return errors.Join(err, d.proms.stop(ctx), d.store.Close())
}

// prometheuses are the environments' Prometheus servers: one for each
// environment whose serving revision has alert rules, started when it
// first serves, restarted when the rules change, its targets kept in step
// with the ready instances.
type prometheuses struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex
	servers map[string]*promServer
}

type promServer struct {
	srv     *promenv.Server
	rules   []runtime.File
	targets []promenv.TargetGroup // as last set; nil before the first
}

// serving is the controller's Serving hook.
func (p *prometheuses) serving(ctx context.Context, env string, spec runtime.EnvironmentSpec, groups []envctl.ServiceTargets) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.servers[env]
	if cur != nil && !sameFiles(cur.rules, spec.AlertRules) {
		delete(p.servers, env)
		if err := cur.srv.Stop(context.WithoutCancel(ctx)); err != nil {
			p.log.Warn("stop the environment's prometheus", "environment", env, "err", err)
		}
		cur = nil
	}
	if len(spec.AlertRules) == 0 {
		return nil
	}
	if cur == nil {
		srv, err := promenv.Start(ctx, promenv.Config{Environment: env, Rules: spec.AlertRules, Dir: filepath.Join(p.dir, env), Log: p.log})
		if err != nil {
			return fmt.Errorf("start the prometheus of %s: %w", env, err)
		}
		cur = &promServer{srv: srv, rules: spec.AlertRules}
		p.servers[env] = cur
		p.log.Info("environment prometheus started", "environment", env, "url", srv.URL())
	}
	// Each group's instances are labelled service="NAME" (the rollout's
	// activeService or previewService), as behind a Kubernetes Service.
	var want []promenv.TargetGroup
	for _, g := range groups {
		tg := promenv.TargetGroup{Targets: slices.Sorted(slices.Values(g.Addrs))}
		if g.Service != "" {
			tg.Labels = map[string]string{"service": g.Service}
		}
		want = append(want, tg)
	}
	if cur.targets != nil && reflect.DeepEqual(cur.targets, want) {
		return nil
	}
	if err := cur.srv.SetTargetGroups(want); err != nil {
		return err
	}
	cur.targets = want
	return nil
}

func (p *prometheuses) url(env string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.servers[env]; s != nil {
		return s.srv.URL()
	}
	return ""
}

func (p *prometheuses) stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for env, s := range p.servers {
		if err := s.srv.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the prometheus of %s: %w", env, err))
		}
		delete(p.servers, env)
	}
	return errors.Join(errs...)
}

func sameFiles(a, b []runtime.File) bool {
	return slices.EqualFunc(a, b, func(x, y runtime.File) bool { return x.Name == y.Name && bytes.Equal(x.Data, y.Data) })
}

// serveRuns is the run history the API serves: the state dir's store
// and artifacts, an engine that decides approvals, and the queue that
// resumes approved runs.
func serveRuns(stateDir string, st *store.Store, q serve.Queue, logger *slog.Logger) (*serve.Runs, error) {
	arts, err := artifact.New(filepath.Join(stateDir, "artifacts"))
	if err != nil {
		return nil, fmt.Errorf("open the artifact store: %w", err)
	}
	eng, err := engine.New(st, arts, stateDir, engine.WithLogger(logger), engine.WithVersion(version()))
	if err != nil {
		return nil, err
	}
	return &serve.Runs{Store: st, Artifacts: arts, StateDir: stateDir, Decider: eng, Queue: q}, nil
}

func newServeCmd(g *options.Global) *cobra.Command {
	lo := &options.ServeListen{}
	oo := &options.OIDC{}
	qo := &options.ServeQueue{}
	var vo serve.Verification
	au := &options.AgentURLs{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the long-lived gantry process of the state dir (environments, embedded registry, API) in the foreground",
		Long: `Run the long-lived gantry process of the state dir in the foreground,
logging to stderr: for a terminal or a systemd unit. It hosts the
environment controller and the embedded registry, and answers the CLI on
the Unix socket STATE_DIR/gantry.sock (mode 0600, the same user only).
With --listen it also serves the API, the web UI, login and webhooks on
TCP, for browsers and remote CLIs: users log in (gantry user, OIDC) or
send an API token (gantry token); TLS (--tls-cert, --tls-key) is required
off loopback. SIGINT or SIGTERM, or gantry serve stop, stop it gracefully.

It also runs the server's runs (docs/queue.md): runs submitted with
gantry run --server or POST /api/v1/runs, and, with --webhook-secret-file,
the pushes and pull requests GitHub or Gitea deliver to /webhooks/github
and /webhooks/gitea for the --repo repositories (docs/webhooks.md); up
to --workers at once, each a child gantry run in its own workspace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lo.Validate(); err != nil {
				return usageErr(err)
			}
			if err := oo.Validate(lo.Listen); err != nil {
				return usageErr(err)
			}
			if err := qo.Validate(); err != nil {
				return usageErr(err)
			}
			for _, r := range vo.Registries {
				if r == "" || strings.ContainsAny(r, "/@ ") {
					return usageErr(fmt.Errorf("--verify-registry %q: want a registry host, HOST or HOST:PORT", r))
				}
			}
			agentURLs, err := au.Map()
			if err != nil {
				return usageErr(err)
			}
			if len(agentURLs) > 0 && lo.Listen == "" {
				return usageErr(errors.New("--agent-url needs --listen: probe agents reach the server on the TCP listener"))
			}
			if qo.WebhookSecretFile != "" && lo.Listen == "" {
				return usageErr(errors.New("--webhook-secret-file needs --listen: webhooks are received on the TCP listener"))
			}
			if lo.Listen != "" {
				if err := serve.CheckListen(lo.Listen, lo.TLSCert != ""); err != nil {
					return usageErr(err)
				}
			}
			var oidcCfg *auth.OIDCConfig
			if oo.Enabled() {
				var err error
				if oidcCfg, err = oidcConfig(oo); err != nil {
					return usageErr(err)
				}
			}
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			storeURL, err := resolveStore(g)
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if g.Verbose {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctx := cmd.Context()
			d, err := newDeployer(ctx, stateDir, storeURL, agentURLs, logger)
			if err != nil {
				return failed(fmt.Errorf("start the environment controller: %w", err))
			}
			cfg := serve.Config{StateDir: stateDir, Deployer: d, Version: version(), Logger: logger, Verification: vo}
			if dl, ok := d.(*delivery); ok {
				sq, err := newServerQueue(stateDir, dl.store, qo, logger)
				if err != nil {
					cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
					defer cancel()
					return usageErr(errors.Join(err, d.Close(cctx)))
				}
				cfg.RunQueue, cfg.Webhooks = sq.api, sq.webhooks
				cfg.Background = sq.run
				// The run history's API decides approvals and resumes
				// approved runs on the queue.
				if cfg.Runs, err = serveRuns(stateDir, dl.store, sq.q, logger); err != nil {
					cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
					defer cancel()
					return failed(errors.Join(err, d.Close(cctx)))
				}
			}
			// The environment controller runs the blue/green rollouts
			// too (a deployer without them answers 501).
			if r, ok := any(d).(runtime.Roller); ok {
				cfg.Roller = r
			}
			if lo.Listen != "" {
				dl, ok := d.(*delivery)
				if !ok {
					return failed(errors.New("the TCP listener needs the state dir's store"))
				}
				svc, err := auth.New(ctx, auth.Config{Store: dl.store, Logger: logger, SessionIdle: lo.SessionIdle,
					SessionMax: lo.SessionMax, Origins: lo.Origins, OIDC: oidcCfg})
				if err != nil {
					cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
					defer cancel()
					return failed(errors.Join(fmt.Errorf("start the TCP listener's authentication: %w", err), d.Close(cctx)))
				}
				cfg.Listen, cfg.TLSCert, cfg.TLSKey, cfg.Auth = lo.Listen, lo.TLSCert, lo.TLSKey, svc
				if users, err := dl.store.Users(ctx); err == nil && len(users) == 0 && oidcCfg == nil {
					logger.Warn("no users and no single sign-on: nobody can log in on the TCP listener; add one with gantry user add NAME --role ROLE")
				}
			}
			err = serve.Run(ctx, cfg)
			var running *serve.AlreadyRunningError
			if errors.As(err, &running) {
				return &ExitError{Code: ExitAlreadyRunning, Err: err}
			}
			if errors.Is(err, serve.ErrCleartextListen) {
				return usageErr(err)
			}
			if err != nil {
				return failed(err)
			}
			return nil
		},
	}
	lo.AddFlags(cmd.Flags())
	oo.AddFlags(cmd.Flags())
	qo.AddFlags(cmd.Flags())
	cmd.Flags().StringArrayVar(&vo.Keys, "verify-key", nil, "a public key file or KMS URI the evidence API checks image signatures with (repeatable; default: the state dir's key)")
	cmd.Flags().StringArrayVar(&vo.Registries, "verify-registry", nil, "a registry host (HOST[:PORT]) whose images the evidence API reads, besides the embedded registry (repeatable)")
	au.AddFlags(cmd.Flags())
	cmd.AddCommand(newServeStopCmd(g), newServeStatusCmd(g))
	return cmd
}

// maxSecretFile bounds the OIDC client secret file.
const maxSecretFile = 4 << 10

// oidcConfig builds the single sign-on configuration from the flags,
// reading the client secret from its file, which other users must not be
// able to read.
func oidcConfig(o *options.OIDC) (*auth.OIDCConfig, error) {
	f, err := os.Open(o.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--oidc-client-secret-file %s is readable by other users (mode %v): chmod 600 it", o.ClientSecretFile, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("--oidc-client-secret-file %s is over %d bytes", o.ClientSecretFile, maxSecretFile)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return nil, fmt.Errorf("--oidc-client-secret-file %s is empty", o.ClientSecretFile)
	}
	roles, err := auth.ParseRoleMap(o.RoleMap)
	if err != nil {
		return nil, fmt.Errorf("--oidc-role-map: %w", err)
	}
	cfg := &auth.OIDCConfig{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, RedirectURL: o.RedirectURL,
		UserClaim: o.UserClaim, RoleClaim: o.RoleClaim, RoleMap: roles}
	if o.DefaultRole != "" {
		r, err := auth.ParseRole(o.DefaultRole)
		if err != nil {
			return nil, fmt.Errorf("--oidc-default-role: %w", err)
		}
		cfg.DefaultRole = r
	}
	if len(roles) == 0 && cfg.DefaultRole == "" {
		return nil, errors.New("--oidc-issuer: give --oidc-role-map, --oidc-default-role or both: without them nobody could log in")
	}
	return cfg, nil
}

func newServeStopCmd(g *options.Global) *cobra.Command {
	o := &options.ServeStop{}
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the gantry serve of the state dir and wait until it has released it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.Timeout)
			defer cancel()
			c, err := serve.Dial(ctx, stateDir)
			if errors.Is(err, serve.ErrNotRunning) {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "gantry serve is not running for %s\n", stateDir)
				return err
			}
			if err != nil {
				return failed(err)
			}
			defer c.Close()
			h, err := c.Health(ctx)
			if err != nil {
				return failed(err)
			}
			if err := c.Shutdown(ctx); err != nil {
				return failed(fmt.Errorf("stop gantry serve (pid %d): %w", h.Pid, err))
			}
			if err := serve.WaitStopped(ctx, stateDir); err != nil {
				return failed(fmt.Errorf("gantry serve (pid %d): %w", h.Pid, err))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "stopped gantry serve (pid %d) for %s\n", h.Pid, stateDir)
			return err
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newServeStatusCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether gantry serve runs for the state dir, and since when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			h, err := callServe(cmd, g, func(ctx context.Context, c *serve.Client) (serve.Health, error) {
				return c.Health(ctx)
			})
			if err != nil {
				return err
			}
			return printAs(cmd.OutOrStdout(), out.Format, h, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "state dir:\t%s\n", h.StateDir)
				fmt.Fprintf(tw, "socket:\t%s\n", serve.SocketPath(h.StateDir))
				fmt.Fprintf(tw, "pid:\t%d\n", h.Pid)
				fmt.Fprintf(tw, "version:\t%s\n", terminalSafe(h.Version))
				fmt.Fprintf(tw, "up:\t%s (since %s)\n", (time.Duration(h.Uptime) * time.Second).Round(time.Second), h.Started.Local().Format(time.RFC3339))
				if h.Registry != "" {
					fmt.Fprintf(tw, "registry:\t%s\n", h.Registry)
				}
			})
		},
	}
	out.AddFlags(cmd.Flags())
	return cmd
}

// dialServe connects to the gantry serve of the state dir; when none
// runs the error says so (exit ExitNotRunning).
func dialServe(cmd *cobra.Command, g *options.Global) (*serve.Client, error) {
	stateDir, err := g.ResolveStateDir()
	if err != nil {
		return nil, usageErr(err)
	}
	c, err := serve.Dial(cmd.Context(), stateDir)
	if err != nil {
		return nil, envErr(err)
	}
	return c, nil
}

// callServe connects to the gantry serve of the state dir, makes one call
// and closes the connection; the errors of both are mapped to exit codes
// (dialServe, envErr).
func callServe[T any](cmd *cobra.Command, g *options.Global, call func(context.Context, *serve.Client) (T, error)) (T, error) {
	c, err := dialServe(cmd, g)
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.Close()
	v, err := call(cmd.Context(), c)
	if err != nil {
		return v, envErr(err)
	}
	return v, nil
}

// envErr maps an error of the serve client to an exit code.
func envErr(err error) error {
	switch {
	case errors.Is(err, serve.ErrNotRunning):
		return &ExitError{Code: ExitNotRunning, Err: fmt.Errorf("%w (start it with: gantry serve)", err)}
	case errors.Is(err, serve.ErrForbidden):
		return &ExitError{Code: ExitForbidden, Err: err}
	case errors.Is(err, serve.ErrBadRequest), errors.Is(err, store.ErrNotFound):
		return usageErr(err)
	}
	return failed(err)
}

// terminalSafe replaces control characters, so that text from a repository
// or a webhook (reasons, messages) cannot drive the terminal.
func terminalSafe(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			b[i] = '?'
		}
	}
	return string(b)
}
