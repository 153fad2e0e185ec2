// Package app wires the payment service: it builds the backends named by
// the configuration, serves the HTTP API and runs the webhook worker until
// its context is cancelled, then shuts both down gracefully.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/redis/go-redis/v9"

	"github.com/examplepay/payment-service/internal/api"
	"github.com/examplepay/payment-service/internal/config"
	"github.com/examplepay/payment-service/internal/idempotency"
	"github.com/examplepay/payment-service/internal/metrics"
	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/queue"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/store/postgres"
	"github.com/examplepay/payment-service/internal/webhook"
)

// App is a configured, listening service.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	listener net.Listener
	server   *http.Server
	worker   *webhook.Worker
	closers  []func()
}

// Backends are the storage, idempotency and queue implementations.
type Backends struct {
	Repo        store.Repository
	Idempotency idempotency.Store
	Queue       queue.Queue
	Ready       []api.Check
	// PoolStats, when set, is exported as pgxpool_* metrics.
	PoolStats func() metrics.PoolStats
	Close     func()
}

// MemoryBackends keeps everything in process memory.
func MemoryBackends(cfg config.Config) Backends {
	repo := store.NewMemory()
	return Backends{
		Repo:        repo,
		Idempotency: idempotency.NewMemory(cfg.IdempotencyTTL),
		Queue:       queue.NewMemory(cfg.QueueVisibility),
		Ready:       []api.Check{{Name: "memory", Ping: repo.Ping}},
		Close:       func() {},
	}
}

// ExternalBackends connects to PostgreSQL (running migrations), Redis and
// SQS as configured.
func ExternalBackends(ctx context.Context, cfg config.Config) (Backends, error) {
	pg, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return Backends{}, err
	}
	if err := pg.Migrate(ctx); err != nil {
		pg.Close()
		return Backends{}, err
	}
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		pg.Close()
		return Backends{}, errors.New("parse REDIS_URL: want redis://[user:password@]host:port[/db]")
	}
	rdb := redis.NewClient(ropts)
	idem := idempotency.NewRedis(rdb, "payment-service:idempotency:", cfg.IdempotencyTTL)
	if err := idem.Ping(ctx); err != nil {
		pg.Close()
		_ = rdb.Close()
		return Backends{}, fmt.Errorf("connect to Redis at %s: %w", ropts.Addr, err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.AWSRegion))
	if err != nil {
		pg.Close()
		_ = rdb.Close()
		return Backends{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.SQSEndpoint)
		}
	})
	return Backends{
		Repo:        pg,
		Idempotency: idem,
		Queue:       queue.NewSQS(client, cfg.SQSQueueURL, cfg.QueueVisibility),
		Ready:       []api.Check{{Name: "postgres", Ping: pg.Ping}, {Name: "redis", Ping: idem.Ping}},
		PoolStats:   pg.PoolStats,
		Close: func() {
			_ = rdb.Close()
			pg.Close()
		},
	}, nil
}

// New builds the service on b and starts listening on cfg.Addr.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, b Backends) (*App, error) {
	reg := metrics.NewRegistry()
	if b.PoolStats != nil {
		reg.MustRegister(metrics.NewPoolCollector(b.PoolStats))
	}
	handler := api.New(api.Deps{
		Repo: b.Repo, Idempotency: b.Idempotency, Processor: payment.FakeProcessor{},
		Events: webhook.NewDispatcher(b.Repo, b.Queue), Metrics: metrics.NewHTTP(reg),
		MetricsHandler: metrics.Handler(reg), Ready: b.Ready, Log: log,
		Fault: api.Fault{Latency: cfg.FaultLatency, ErrorRate: cfg.FaultErrorRate},
	}).Handler()
	worker := webhook.NewWorker(b.Queue, b.Repo, b.Repo, log,
		webhook.WithMaxAttempts(cfg.WebhookMaxAttempts),
		webhook.WithBackoff(webhook.Backoff{Base: cfg.WebhookBackoffBase, Max: cfg.WebhookBackoffMax}),
		webhook.WithHTTPClient(&http.Client{Timeout: cfg.WebhookTimeout}),
		webhook.WithPollWait(cfg.QueuePollWait),
	)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return &App{
		cfg: cfg, log: log, listener: ln, worker: worker,
		server: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		closers: []func(){b.Close},
	}, nil
}

// Addr is the address the service listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Run serves until ctx is cancelled (SIGTERM in main), then stops taking
// connections, drains in-flight requests for up to ShutdownTimeout, stops
// the worker after its current job and closes the backends.
func (a *App) Run(ctx context.Context) error {
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	var wg sync.WaitGroup
	wg.Add(2)
	serveErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		if err := a.server.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	go func() {
		defer wg.Done()
		_ = a.worker.Run(workerCtx) // returns nil once cancelled
	}()
	a.log.InfoContext(ctx, "payment service listening", "addr", a.Addr(), "config", a.cfg)

	var err error
	select {
	case <-ctx.Done():
		a.log.InfoContext(ctx, "shutting down", "timeout", a.cfg.ShutdownTimeout)
	case err = <-serveErr:
		err = fmt.Errorf("serve HTTP: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if serr := a.server.Shutdown(shutdownCtx); serr != nil {
		err = errors.Join(err, fmt.Errorf("drain HTTP connections: %w", serr))
	}
	stopWorker()
	wg.Wait()
	for _, c := range a.closers {
		c()
	}
	a.log.InfoContext(ctx, "stopped")
	return err
}
