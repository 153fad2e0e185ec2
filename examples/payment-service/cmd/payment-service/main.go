// Command payment-service serves the payment-intent API and delivers
// signed webhooks. Configuration comes from the environment (see README).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/examplepay/payment-service/internal/app"
	"github.com/examplepay/payment-service/internal/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "payment-service:", err)
		os.Exit(1)
	}
}

func run() error {
	memory := flag.Bool("memory", false, "keep everything in memory (same as STORAGE=memory): no PostgreSQL, Redis or SQS")
	flag.Parse()
	getenv := os.Getenv
	if *memory {
		getenv = func(k string) string {
			if k == "STORAGE" {
				return config.StorageMemory
			}
			return os.Getenv(k)
		}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	backends := app.MemoryBackends(cfg)
	if cfg.Storage == config.StorageExternal {
		if backends, err = app.ExternalBackends(ctx, cfg); err != nil {
			return err
		}
	} else {
		log.Warn("running with in-memory storage: data is lost on exit and not shared between replicas")
	}
	a, err := app.New(ctx, cfg, log, backends)
	if err != nil {
		backends.Close()
		return err
	}
	return a.Run(ctx)
}
