package cli

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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/workspace"
)

// runServer holds gantry run's flags for submitting to a server.
type runServer struct {
	server    string
	tokenFile string
	follow    bool
	poll      time.Duration
}

func (s *runServer) addFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&s.server, "server", "", "submit the checkout's HEAD to the gantry server at this URL (https://, http:// on the loopback, or unix://SOCKET for the server of this machine) instead of running it here (default $GANTRY_SERVER)")
	fs.StringVar(&s.tokenFile, "token-file", "", "with --server: read the API token from this file (mode 0600; default $GANTRY_TOKEN)")
	fs.BoolVar(&s.follow, "follow", false, "with --server: wait for the run to end and exit with its status")
	fs.DurationVar(&s.poll, "poll", time.Second, "with --server: how often to ask the server how the run goes")
	_ = fs.MarkHidden("poll")
}

func (s *runServer) url() string {
	if s.server != "" {
		return s.server
	}
	return os.Getenv("GANTRY_SERVER")
}

// remoteClient talks to a gantry server's API.
type remoteClient struct {
	base  string // scheme://host, no trailing slash
	http  *http.Client
	token string
	local bool // the server of this machine, over its Unix socket
}

func newRemoteClient(server, tokenFile string) (*remoteClient, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", server, err)
	}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			sock = u.Opaque
		}
		if !filepath.IsAbs(sock) {
			return nil, fmt.Errorf("--server %q: want unix:///absolute/path/to/gantry.sock", server)
		}
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		return &remoteClient{base: "http://gantry", http: &http.Client{Transport: tr}, local: true}, nil
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("--server %q: http:// only on the loopback (the token would cross the network in clear); use https://", server)
		}
	default:
		return nil, fmt.Errorf("--server %q: want https://, http:// on the loopback or unix://", server)
	}
	tok, err := readToken(tokenFile)
	if err != nil {
		return nil, err
	}
	return &remoteClient{base: strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), http: &http.Client{Timeout: time.Minute}, token: tok}, nil
}

// readToken reads the API token from file (owner-only), else $GANTRY_TOKEN.
func readToken(file string) (string, error) {
	if file == "" {
		if tok := strings.TrimSpace(os.Getenv("GANTRY_TOKEN")); tok != "" {
			return tok, nil
		}
		return "", errors.New("no API token for the server: set GANTRY_TOKEN or --token-file")
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s is readable by other users (mode %v); chmod 600 it", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return tok, nil
}

// do sends a JSON request and decodes a JSON answer into out; an error
// answer becomes an error with the server's message.
func (c *remoteClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
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
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("gantry server: %s (%d %s)", terminalSafe(e.Error.Message), resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("gantry server: %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
	}
	return nil
}

// submitToServer is gantry run --server: submit the checkout's HEAD (by
// its remote origin URL, or its path for the server of this machine),
// print the run's id and link, and with --follow wait for its end.
func submitToServer(cmd *cobra.Command, s *runServer, dir, event, branch, base string, vars map[string]string) error {
	ctx := cmd.Context()
	c, err := newRemoteClient(s.url(), s.tokenFile)
	if err != nil {
		return usageErr(err)
	}
	facts, err := workspace.Describe(ctx, dir)
	if err != nil {
		return err
	}
	if facts.SHA == "" {
		return usageErr(fmt.Errorf("%s is not a git checkout with a commit: the server builds commits", dir))
	}
	if branch == "" {
		branch = facts.Branch
	}
	if branch == "" {
		return usageErr(errors.New("HEAD is detached: name the branch with --branch"))
	}
	repo, err := repoFor(ctx, dir, c.local)
	if err != nil {
		return usageErr(err)
	}
	if event == "pull_request" && base == "" {
		base = "main"
	}
	w := cmd.OutOrStdout()
	var it queue.Item
	if err := c.do(ctx, http.MethodPost, "/api/v1/runs", queue.SubmitRequest{Repo: repo, Ref: branch, SHA: facts.SHA, Event: event, Base: base, Vars: vars}, &it); err != nil {
		return failed(err)
	}
	fmt.Fprintf(w, "queued %s: %s of %s at %s\n", it.ID, event, terminalSafe(branch), facts.SHA[:12])
	announced := false
	for {
		if it.RunID != 0 && !announced {
			announced = true
			if c.local {
				fmt.Fprintf(w, "run %d (gantry show %d)\n", it.RunID, it.RunID)
			} else {
				fmt.Fprintf(w, "run %d: %s/runs/%d\n", it.RunID, c.base, it.RunID)
			}
			if !s.follow {
				return nil
			}
		}
		if st := it.State; st != "queued" && st != "running" {
			fmt.Fprintf(w, "%s: %s", it.ID, st)
			if it.Message != "" {
				fmt.Fprintf(w, " (%s)", terminalSafe(it.Message))
			}
			fmt.Fprintln(w)
			return serverOutcome(it.State)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(w, "stopped following; the run goes on (cancel: POST /api/v1/runs/%s/cancel)\n", it.ID)
			return &ExitError{Code: ExitCancelled}
		case <-time.After(s.poll):
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/queue/"+url.PathEscape(it.ID), nil, &it); err != nil {
			if ctx.Err() != nil {
				continue
			}
			return failed(err)
		}
	}
}

// serverOutcome maps a queue item's final state to gantry run's exit
// status.
func serverOutcome(state string) error {
	switch state {
	case "passed":
		return nil
	case "waiting":
		return &ExitError{Code: ExitWaiting}
	case "cancelled":
		return &ExitError{Code: ExitCancelled}
	}
	return &ExitError{Code: ExitFailed}
}

// repoFor is the repository the server fetches: the checkout's root for
// the server of this machine, else its origin remote's URL.
func repoFor(ctx context.Context, dir string, local bool) (string, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if local {
		top, err := git("rev-parse", "--show-toplevel")
		if err != nil {
			return "", fmt.Errorf("find the checkout's root: %w", err)
		}
		return top, nil
	}
	u, err := git("remote", "get-url", "origin")
	if err != nil || u == "" {
		return "", errors.New("the checkout has no origin remote: the server fetches the commit from it (push it first)")
	}
	return u, nil
}
