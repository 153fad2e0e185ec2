package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// ErrNoRoller is what the API answers (501, CodeUnsupported) when the
// serve process was started without a rollout controller.
var ErrNoRoller = fmt.Errorf("this gantry serve runs no rollout controller (blue/green rollouts are not available): %w", errors.ErrUnsupported)

// PromoteRequest is the body of POST /api/v1/environments/{env}/promote.
type PromoteRequest struct {
	// Full skips the remaining analysis and pauses.
	Full bool   `json:"full,omitempty"`
	Who  string `json:"who"`
}

// AbortRequest is the body of POST /api/v1/environments/{env}/abort.
type AbortRequest struct {
	Who    string `json:"who"`
	Reason string `json:"reason,omitempty"`
}

// RetryRequest is the body of POST /api/v1/environments/{env}/retry.
type RetryRequest struct {
	Who string `json:"who"`
}

// UndoRequest is the body of POST /api/v1/environments/{env}/undo.
type UndoRequest struct {
	// ToRevision 0 means the previous revision.
	ToRevision int    `json:"toRevision,omitempty"`
	Who        string `json:"who"`
}

// withRoller answers 501 when the process has no rollout controller.
// Every rollout endpoint first checks that the caller may do action.
func (a *API) withRoller(action auth.Action, h func(w http.ResponseWriter, r *http.Request, env string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.authorize(w, r, action); !ok {
			return
		}
		env, ok := a.env(w, r)
		if !ok {
			return
		}
		if a.roller == nil {
			a.writeError(w, r, "rollout of "+env, ErrNoRoller)
			return
		}
		h(w, r, env)
	}
}

func (a *API) postRollout(w http.ResponseWriter, r *http.Request, env string) {
	var req runtime.RolloutRequest
	if !decode(w, r, "rollout request", &req) {
		return
	}
	if req.Deploy.Environment == "" {
		req.Deploy.Environment = env
	}
	if req.Deploy.Environment != env {
		writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("rollout request: environment %q in the body, %q in the path", req.Deploy.Environment, env))
		return
	}
	req.Deploy.Who = a.who(r, req.Deploy.Who)
	st, err := a.roller.Rollout(r.Context(), req)
	a.reply(w, r, "roll out to "+env, st, err)
}

func (a *API) postPromote(w http.ResponseWriter, r *http.Request, env string) {
	var req PromoteRequest
	if !decode(w, r, "promote request", &req) {
		return
	}
	st, err := a.roller.Promote(r.Context(), env, req.Full, a.who(r, req.Who))
	a.reply(w, r, "promote "+env, st, err)
}

func (a *API) postAbort(w http.ResponseWriter, r *http.Request, env string) {
	var req AbortRequest
	if !decode(w, r, "abort request", &req) {
		return
	}
	st, err := a.roller.Abort(r.Context(), env, a.who(r, req.Who), req.Reason)
	a.reply(w, r, "abort the rollout of "+env, st, err)
}

func (a *API) postRetry(w http.ResponseWriter, r *http.Request, env string) {
	var req RetryRequest
	if !decode(w, r, "retry request", &req) {
		return
	}
	st, err := a.roller.Retry(r.Context(), env, a.who(r, req.Who))
	a.reply(w, r, "retry the rollout of "+env, st, err)
}

func (a *API) postUndo(w http.ResponseWriter, r *http.Request, env string) {
	var req UndoRequest
	if !decode(w, r, "undo request", &req) {
		return
	}
	if req.ToRevision < 0 {
		writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("undo request: toRevision %d is negative", req.ToRevision))
		return
	}
	st, err := a.roller.Undo(r.Context(), env, req.ToRevision, a.who(r, req.Who))
	a.reply(w, r, "undo the rollout of "+env, st, err)
}

func (a *API) getRollout(w http.ResponseWriter, r *http.Request, env string) {
	st, err := a.roller.RolloutStatus(r.Context(), env)
	a.reply(w, r, "rollout status of "+env, st, err)
}

// getRolloutWatch streams the rollout's status as JSON lines
// (application/x-ndjson), one per change, flushed as written, until the
// client goes or the server stops. An error before the first line is a
// JSON error; after it, the Gantry-Error trailer carries it, as for logs.
func (a *API) getRolloutWatch(w http.ResponseWriter, r *http.Request, env string) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.stopping, cancel)
	defer stop()

	sw := startStream(w, "application/x-ndjson")
	var werr error
	err := a.roller.Watch(ctx, env, func(st runtime.RolloutStatus) bool {
		b, err := json.Marshal(st)
		if err != nil {
			werr = fmt.Errorf("encode the rollout status: %w", err)
			return false
		}
		_, werr = sw.Write(append(b, '\n'))
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err != nil && ctx.Err() != nil {
		// Watching ends when the client goes or the server stops.
		err = nil
	}
	a.endStream(w, r, sw, "watch the rollout of "+env, err)
}

var _ runtime.Roller = (*Client)(nil)

// Rollout implements runtime.Roller.
func (c *Client) Rollout(ctx context.Context, req runtime.RolloutRequest) (runtime.RolloutStatus, error) {
	var st runtime.RolloutStatus
	if err := ValidEnvironment(req.Deploy.Environment); err != nil {
		return st, err
	}
	err := c.do(ctx, http.MethodPost, envPath(req.Deploy.Environment, "rollout"), req, &st)
	return st, err
}

// Promote implements runtime.Roller.
func (c *Client) Promote(ctx context.Context, environment string, full bool, who string) (runtime.RolloutStatus, error) {
	return c.rolloutVerb(ctx, environment, "promote", PromoteRequest{Full: full, Who: who})
}

// Abort implements runtime.Roller.
func (c *Client) Abort(ctx context.Context, environment, who, reason string) (runtime.RolloutStatus, error) {
	return c.rolloutVerb(ctx, environment, "abort", AbortRequest{Who: who, Reason: reason})
}

// Retry implements runtime.Roller.
func (c *Client) Retry(ctx context.Context, environment, who string) (runtime.RolloutStatus, error) {
	return c.rolloutVerb(ctx, environment, "retry", RetryRequest{Who: who})
}

// Undo implements runtime.Roller.
func (c *Client) Undo(ctx context.Context, environment string, toRevision int, who string) (runtime.RolloutStatus, error) {
	return c.rolloutVerb(ctx, environment, "undo", UndoRequest{ToRevision: toRevision, Who: who})
}

// RolloutStatus implements runtime.Roller.
func (c *Client) RolloutStatus(ctx context.Context, environment string) (runtime.RolloutStatus, error) {
	var st runtime.RolloutStatus
	if err := ValidEnvironment(environment); err != nil {
		return st, err
	}
	err := c.do(ctx, http.MethodGet, envPath(environment, "rollout"), nil, &st)
	return st, err
}

func (c *Client) rolloutVerb(ctx context.Context, environment, verb string, body any) (runtime.RolloutStatus, error) {
	var st runtime.RolloutStatus
	if err := ValidEnvironment(environment); err != nil {
		return st, err
	}
	err := c.do(ctx, http.MethodPost, envPath(environment, verb), body, &st)
	return st, err
}

// maxStatusLine bounds one line of a rollout watch: a status carries its
// analyses' measurements.
const maxStatusLine = 16 << 20

// Watch implements runtime.Roller: it calls f with each status line the
// server streams until f returns false (nil), ctx ends (nil) or the
// stream ends (the error the server sent, or an error saying that the
// stream ended).
func (c *Client) Watch(ctx context.Context, environment string, f func(runtime.RolloutStatus) bool) error {
	if err := ValidEnvironment(environment); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+envPath(environment, "rollout/watch"), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return c.transportErr(ctx, "watch the rollout of "+environment, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStatusLine)
	for sc.Scan() {
		var st runtime.RolloutStatus
		if err := json.Unmarshal(sc.Bytes(), &st); err != nil {
			return fmt.Errorf("watch the rollout of %s: decode a status: %w", environment, err)
		}
		if !f(st) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("watch the rollout of %s: %w", environment, err)
	}
	if v := resp.Trailer.Get(errorTrailer); v != "" {
		var body errorBody
		raw, uerr := url.QueryUnescape(v)
		if uerr != nil || json.Unmarshal([]byte(raw), &body) != nil {
			return fmt.Errorf("watch the rollout of %s: the stream ended with an unreadable error", environment)
		}
		return newAPIError(http.StatusInternalServerError, body)
	}
	return fmt.Errorf("watch the rollout of %s: gantry serve ended the stream (it is stopping): %w", environment, runtime.ErrClosed)
}
