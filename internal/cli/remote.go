package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/store"
)

// dialRemote returns the client of the server o names (bad usage when
// the URL or the token is unusable).
func dialRemote(o *options.Remote) (*serve.Client, error) {
	tok, err := o.Token()
	if err != nil {
		return nil, usageErr(err)
	}
	c, err := serve.NewRemote(o.URL(), tok)
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

// remoteErr maps a server's answer to the exit status the local command
// gives for the same failure: not found and nothing to decide are bad
// usage (2); a refusal is 77.
func remoteErr(err error) error {
	var api *serve.APIError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrNoPendingApproval), errors.Is(err, store.ErrNotFound), errors.Is(err, serve.ErrBadRequest):
		return usageErr(err)
	case errors.Is(err, serve.ErrForbidden):
		return &ExitError{Code: ExitForbidden, Err: err}
	case errors.As(err, &api):
		return fmt.Errorf("gantry server: %w", err)
	}
	return err
}

// remoteStep finds a step of a shown run as findStep does locally.
func remoteStep(v *runview.Show, arg string) (string, string, error) {
	var steps []store.Step
	for _, st := range v.Stages {
		for _, s := range st.Steps {
			steps = append(steps, store.Step{Stage: st.Name, Name: s.Name})
		}
	}
	return matchStep(steps, v.ID, arg)
}

// pendingStage is the stage of a shown run's one pending approval, as
// engine.Decide picks it when --stage is not given.
func pendingStage(v *runview.Show, stage string) (string, error) {
	if stage != "" {
		return stage, nil
	}
	var pending []string
	for _, ap := range v.Approvals {
		if ap.Status == store.ApprovalPending {
			pending = append(pending, ap.Stage)
		}
	}
	switch len(pending) {
	case 1:
		return pending[0], nil
	case 0:
		return "", usageErr(fmt.Errorf("run %d: %w", v.ID, engine.ErrNoPendingApproval))
	}
	return "", usageErr(fmt.Errorf("run %d waits for approvals of stages %s: name one with --stage: %w", v.ID, strings.Join(pending, ", "), engine.ErrNoPendingApproval))
}

// callServeAt is callServe, on the server remote names when enabled.
func callServeAt[T any](cmd *cobra.Command, g *options.Global, remote *options.Remote, call func(context.Context, *serve.Client) (T, error)) (T, error) {
	if !remote.Enabled() {
		return callServe(cmd, g, call)
	}
	var zero T
	c, err := dialRemote(remote)
	if err != nil {
		return zero, err
	}
	defer c.Close()
	v, err := call(cmd.Context(), c)
	if err != nil {
		return v, envErr(err)
	}
	return v, nil
}
