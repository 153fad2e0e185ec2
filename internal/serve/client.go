package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// Client talks to the serve process of a state dir over its Unix socket.
// It implements runtime.Deployer.
type Client struct {
	stateDir string
	hc       *http.Client
	// base is the URL prefix of the API: socketBase over the socket,
	// the server's URL + /api/v1 for a remote server (NewRemote).
	base string
	// remote is the server's URL when the client talks to one over
	// HTTP(S) rather than to the socket of stateDir.
	remote string
}

var _ runtime.Deployer = (*Client)(nil)

// socketBase is the URL prefix of the API over the socket; the host is
// a placeholder, the transport dials the socket.
const socketBase = "http://gantry/api/v1"

func newClient(stateDir string) *Client {
	sock := SocketPath(stateDir)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{stateDir: stateDir, hc: &http.Client{Transport: tr}, base: socketBase}
}

// dialTimeout bounds Dial's health check.
const dialTimeout = 10 * time.Second

// Dial connects to the serve process of stateDir and checks that it
// answers. When none listens the error wraps ErrNotRunning.
func Dial(ctx context.Context, stateDir string) (*Client, error) {
	c := newClient(stateDir)
	// A process that accepts but never answers is not serving.
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if _, err := c.Health(hctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// StateDir is the state dir of the server the client talks to.
func (c *Client) StateDir() string { return c.stateDir }

// Health asks the server about itself.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, "/health", nil, &h)
	return h, err
}

// Shutdown asks the server to stop. It returns once the server accepted
// the request; WaitStopped waits until it released the state dir.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/shutdown", struct{}{}, nil)
}

// Deploy implements runtime.Deployer.
func (c *Client) Deploy(ctx context.Context, req runtime.DeployRequest) (runtime.Revision, error) {
	var rev runtime.Revision
	if err := ValidEnvironment(req.Environment); err != nil {
		return rev, err
	}
	err := c.do(ctx, http.MethodPost, envPath(req.Environment, "deploy"), req, &rev)
	return rev, err
}

// Rollback implements runtime.Deployer.
func (c *Client) Rollback(ctx context.Context, environment string, toRevision int, who, reason string) (runtime.Revision, error) {
	var rev runtime.Revision
	if err := ValidEnvironment(environment); err != nil {
		return rev, err
	}
	err := c.do(ctx, http.MethodPost, envPath(environment, "rollback"), RollbackRequest{ToRevision: toRevision, Who: who, Reason: reason}, &rev)
	return rev, err
}

// Status implements runtime.Deployer.
func (c *Client) Status(ctx context.Context, environment string) (runtime.EnvironmentStatus, error) {
	var st runtime.EnvironmentStatus
	if err := ValidEnvironment(environment); err != nil {
		return st, err
	}
	err := c.do(ctx, http.MethodGet, envPath(environment, ""), nil, &st)
	return st, err
}

// List implements runtime.Deployer.
func (c *Client) List(ctx context.Context) ([]runtime.EnvironmentStatus, error) {
	var envs []runtime.EnvironmentStatus
	err := c.do(ctx, http.MethodGet, "/environments", nil, &envs)
	return envs, err
}

// History implements runtime.Deployer.
func (c *Client) History(ctx context.Context, environment string) ([]runtime.Revision, error) {
	var revs []runtime.Revision
	if err := ValidEnvironment(environment); err != nil {
		return nil, err
	}
	err := c.do(ctx, http.MethodGet, envPath(environment, "revisions"), nil, &revs)
	return revs, err
}

// Logs implements runtime.Deployer: it copies the stream to w as it
// arrives. Following ends without error when ctx ends.
func (c *Client) Logs(ctx context.Context, environment string, follow bool, w io.Writer) error {
	if err := ValidEnvironment(environment); err != nil {
		return err
	}
	u := c.base + envPath(environment, "logs") + "?follow=" + strconv.FormatBool(follow)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportErr(ctx, "logs of "+environment, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs of %s: %w", environment, err)
	}
	if v := resp.Trailer.Get(errorTrailer); v != "" {
		var body errorBody
		raw, uerr := url.QueryUnescape(v)
		if uerr != nil || json.Unmarshal([]byte(raw), &body) != nil {
			return fmt.Errorf("logs of %s: the stream ended with an unreadable error", environment)
		}
		return newAPIError(http.StatusInternalServerError, body)
	}
	return nil
}

func envPath(environment, what string) string {
	p := "/environments/" + url.PathEscape(environment)
	if what != "" {
		p += "/" + what
	}
	return p
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil), or returns the server's error as an *APIError.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode the request %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportErr(ctx, method+" "+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// transportErr says that no server listens when the socket is missing or
// refuses connections.
func (c *Client) transportErr(ctx context.Context, doing string, err error) error {
	if c.remote != "" {
		return fmt.Errorf("gantry server %s: %s: %w", c.remote, doing, err)
	}
	if ctx.Err() == nil && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
		return fmt.Errorf("%w for %s", ErrNotRunning, c.stateDir)
	}
	return fmt.Errorf("gantry serve for %s: %s: %w", c.stateDir, doing, err)
}

func decodeError(resp *http.Response) error {
	var e apiError
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		return &APIError{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("gantry serve answered %s", resp.Status)}
	}
	return newAPIError(resp.StatusCode, e.Error)
}

// WaitStopped waits until no process holds the serve lock of stateDir,
// polling, until ctx ends.
func WaitStopped(ctx context.Context, stateDir string) error {
	for {
		running, err := Running(stateDir)
		if err != nil {
			return err
		}
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for gantry serve to stop: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
