// Package service starts the throwaway backing services a step asks for
// with `services:` (postgres, redis, sqs) and tears them down afterwards.
package service

import "context"

// Provider starts one kind of service.
type Provider interface {
	// Start launches a fresh instance whose data lives under dir. It returns
	// once the service accepts connections, or ctx is done.
	Start(ctx context.Context, dir string) (Instance, error)
}

// Instance is a running service.
type Instance interface {
	// Env returns the connection settings handed to the step
	// (DATABASE_URL, REDIS_URL, SQS_ENDPOINT, ...).
	Env() map[string]string
	// Stop ends the service and removes what it left behind. It is called
	// with a context that survives the cancellation of the run.
	Stop(ctx context.Context) error
}

// Keeper is a Provider whose data can outlive an instance: an
// environment's services keep their data across redeploys and restarts of
// the serve process.
type Keeper interface {
	// StartKept starts an instance on the data in dir, initialising it
	// only when dir holds none yet. Stop of such an instance ends the
	// server and leaves dir in place.
	StartKept(ctx context.Context, dir string) (Instance, error)
}
