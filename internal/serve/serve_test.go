package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// TestAPIOverSocket calls every Deployer method through the client and
// checks what the server's deployer got and what the client got back.
func TestAPIOverSocket(t *testing.T) {
	s := startServer(t, false)
	ctx := context.Background()
	img := "127.0.0.1:5000/pay@sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name     string
		call     func() (any, error)
		want     any
		wantCall string
	}{
		{"deploy", func() (any, error) {
			return s.c.Deploy(ctx, runtime.DeployRequest{Environment: "staging", Workloads: []runtime.Workload{{Name: "pay", Image: img, Replicas: 2}}, Who: "ana", Run: 12, Reason: "deploy",
				Spec: runtime.EnvironmentSpec{Policies: []runtime.File{{Name: "policy.yaml", Data: []byte("kind: ClusterPolicy\n")}}}})
		}, runtime.Revision{Environment: "staging", Number: 7, Digest: "sha256:" + strings.Repeat("a", 64), Workloads: []runtime.Workload{{Name: "pay", Image: img, Replicas: 2}}, Who: "ana", Run: 12, Reason: "deploy", Status: "serving"}, "deploy staging"},
		{"rollback", func() (any, error) { return s.c.Rollback(ctx, "staging", 3, "ana", "bad release") },
			runtime.Revision{Environment: "staging", Number: 8, Who: "ana", Reason: "bad release", Status: "serving"}, "rollback staging to=3 who=ana reason=bad release"},
		{"status", func() (any, error) { return s.c.Status(ctx, "staging") },
			runtime.EnvironmentStatus{Name: "staging", URL: "http://127.0.0.1:30080", Instances: []runtime.InstanceStatus{{ID: "staging-1-0", State: "ready"}}}, "status staging"},
		{"list", func() (any, error) { return s.c.List(ctx) },
			[]runtime.EnvironmentStatus{{Name: "prod", URL: "http://127.0.0.1:30081"}, {Name: "staging", URL: "http://127.0.0.1:30080"}}, "list"},
		{"history", func() (any, error) { return s.c.History(ctx, "staging") },
			[]runtime.Revision{{Environment: "staging", Number: 1, Status: "superseded"}, {Environment: "staging", Number: 2, Status: "serving"}}, "history staging"},
		{"logs", func() (any, error) {
			var b strings.Builder
			err := s.c.Logs(ctx, "staging", false, &b)
			return b.String(), err
		}, "staging-1-0 | started\n", "logs staging follow=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("answer:\n got %#v\nwant %#v", got, tt.want)
			}
			calls := s.rec.Calls()
			if last := calls[len(calls)-1]; last != tt.wantCall {
				t.Errorf("deployer call: got %q, want %q", last, tt.wantCall)
			}
		})
	}
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if got := s.rec.reqs[0].Spec.Policies; len(got) != 1 || string(got[0].Data) != "kind: ClusterPolicy\n" {
		t.Errorf("deploy request's policies: got %+v, want the policy file carried by value", got)
	}
}

// TestHealth reports the serving process.
func TestHealth(t *testing.T) {
	s := startServer(t, false)
	h, err := s.c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Pid != os.Getpid() || h.Version != "test" || h.StateDir != s.dir || h.Started.IsZero() || h.Uptime < 0 {
		t.Errorf("health: got %+v, want pid %d, version test, state dir %s", h, os.Getpid(), s.dir)
	}
}

// TestErrorsAcrossSocket: each sentinel error of the deployer is
// errors.Is on the client's side, for every call that can return it.
func TestErrorsAcrossSocket(t *testing.T) {
	s := startServer(t, false)
	ctx := context.Background()
	calls := map[string]func(env string) error{
		"deploy": func(env string) error {
			_, err := s.c.Deploy(ctx, runtime.DeployRequest{Environment: env})
			return err
		},
		"rollback": func(env string) error { _, err := s.c.Rollback(ctx, env, 0, "ana", ""); return err },
		"status":   func(env string) error { _, err := s.c.Status(ctx, env); return err },
		"history":  func(env string) error { _, err := s.c.History(ctx, env); return err },
		"logs":     func(env string) error { return s.c.Logs(ctx, env, false, io.Discard) },
	}
	envs := []struct {
		env  string
		want error
	}{
		{"busy", runtime.ErrDeployInProgress},
		{"unready", runtime.ErrNotReady},
		{"refused", runtime.ErrAdmission},
		{"missing", store.ErrNotFound},
		{"invalid", runtime.ErrInvalidRequest},
		{"closed", runtime.ErrClosed},
	}
	wantStatus := map[string]int{"busy": 409, "unready": 422, "refused": 403, "missing": 404, "invalid": 400, "closed": 503}
	for name, call := range calls {
		for _, e := range envs {
			t.Run(name+"/"+e.env, func(t *testing.T) {
				err := call(e.env)
				if !errors.Is(err, e.want) {
					t.Fatalf("got %v, want errors.Is %v", err, e.want)
				}
				var ae *APIError
				if errors.As(err, &ae) && ae.Status != wantStatus[e.env] {
					t.Errorf("HTTP status: got %d, want %d", ae.Status, wantStatus[e.env])
				}
				if want := failFor(e.env).Error(); err.Error() != want {
					t.Errorf("message: got %q, want the deployer's %q", err.Error(), want)
				}
			})
		}
	}
	t.Run("other errors are internal", func(t *testing.T) {
		_, err := s.c.Status(ctx, "broken")
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Code != CodeInternal || apiErr.Status != http.StatusInternalServerError {
			t.Fatalf("got %#v, want an *APIError with code %s", err, CodeInternal)
		}
		for _, sentinel := range []error{runtime.ErrDeployInProgress, runtime.ErrNotReady, runtime.ErrAdmission, store.ErrNotFound} {
			if errors.Is(err, sentinel) {
				t.Errorf("internal error is %v", sentinel)
			}
		}
	})
	t.Run("an error after the log stream started", func(t *testing.T) {
		var b strings.Builder
		err := s.c.Logs(ctx, "breaks-midway", false, &b)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("got %v, want errors.Is store.ErrNotFound from the trailer", err)
		}
		if got, want := b.String(), "breaks-midway-1-0 | started\n"; got != want {
			t.Errorf("lines before the error: got %q, want %q", got, want)
		}
	})
}

// rawRequest sends a request over the socket without the client.
func rawRequest(t *testing.T, dir, method, path, body string) (int, errorBody) {
	t.Helper()
	c := newClient(dir)
	defer c.Close()
	req, err := http.NewRequest(method, "http://gantry"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("%s %s: the answer is not a JSON error: %v", method, path, err)
	}
	return resp.StatusCode, e.Error
}

// TestBadRequests: malformed or oversized bodies and bad names get a 4xx
// JSON error saying what is wrong, and reach no deployer.
func TestBadRequests(t *testing.T) {
	s := startServer(t, false)
	tests := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"malformed JSON", "POST", "/api/v1/environments/staging/deploy", `{"who": "ana",`, 400, CodeBadRequest, "decode the deploy request: unexpected EOF"},
		{"wrong type", "POST", "/api/v1/environments/staging/deploy", `{"run": "twelve"}`, 400, CodeBadRequest, "cannot unmarshal string"},
		{"unknown field", "POST", "/api/v1/environments/staging/rollback", `{"toRevison": 3}`, 400, CodeBadRequest, `unknown field "toRevison"`},
		{"empty body", "POST", "/api/v1/environments/staging/rollback", ``, 400, CodeBadRequest, "empty body"},
		{"trailing data", "POST", "/api/v1/environments/staging/rollback", `{} {}`, 400, CodeBadRequest, "data after the JSON value"},
		{"negative revision", "POST", "/api/v1/environments/staging/rollback", `{"toRevision": -1}`, 400, CodeBadRequest, "negative"},
		{"environment mismatch", "POST", "/api/v1/environments/staging/deploy", `{"environment": "prod"}`, 400, CodeBadRequest, `"prod" in the body, "staging" in the path`},
		{"too large", "POST", "/api/v1/environments/staging/deploy", `{"who": "` + strings.Repeat("x", maxBody) + `"}`, 413, CodeTooLarge, "larger than"},
		{"bad environment name", "GET", "/api/v1/environments/..%2Fetc/revisions", ``, 400, CodeBadRequest, "environment name"},
		{"bad follow", "GET", "/api/v1/environments/staging/logs?follow=maybe", ``, 400, CodeBadRequest, `follow="maybe"`},
		{"unknown path", "GET", "/api/v2/environments", ``, 404, CodeNotFound, "no API endpoint"},
		{"wrong method", "DELETE", "/api/v1/environments/staging", ``, 405, CodeMethodNotAllowed, "no API endpoint DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.rec.Calls())
			status, body := rawRequest(t, s.dir, tt.method, tt.path, tt.body)
			if status != tt.status || body.Code != tt.code {
				t.Errorf("got %d %s, want %d %s (%s)", status, body.Code, tt.status, tt.code, body.Message)
			}
			if !strings.Contains(body.Message, tt.msg) {
				t.Errorf("message: got %q, want it to contain %q", body.Message, tt.msg)
			}
			if after := len(s.rec.Calls()); after != before {
				t.Errorf("the deployer was called: %v", s.rec.Calls()[before:])
			}
		})
	}
}

// TestLogsFollow: following streams each line as the deployer writes it
// and ends, without error, when the client's ctx ends.
func TestLogsFollow(t *testing.T) {
	s := startServer(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.c.Logs(ctx, "staging", true, pw); pw.Close() }()
	lines := bufio.NewReader(pr)
	read := func() string {
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if got, want := read(), "staging-1-0 | started\n"; got != want {
		t.Errorf("first line: got %q, want %q", got, want)
	}
	for _, l := range []string{"staging-1-0 | GET /pay 200", "staging-1-1 | GET /pay 201"} {
		s.rec.lines <- l // taken only once the previous line was read
		if got := read(); got != l+"\n" {
			t.Errorf("followed line: got %q, want %q", got, l+"\n")
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Errorf("Logs after ctx ended: got %v, want nil", err)
	}
}

// TestShutdown: the shutdown endpoint ends a following log stream, lets
// Run stop the deployer and close it, removes the socket and releases
// the lock.
func TestShutdown(t *testing.T) {
	s := startServer(t, false)
	ctx := context.Background()
	pr, pw := io.Pipe()
	follow := make(chan error, 1)
	go func() { follow <- s.c.Logs(ctx, "staging", true, pw); pw.Close() }()
	if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	if err := s.c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Errorf("Run after shutdown: %v", err)
	}
	s.done <- nil
	if err := <-follow; err != nil {
		t.Errorf("following Logs when the server stopped: got %v, want nil", err)
	}
	s.rec.mu.Lock()
	ran, runEnd, closed := s.rec.ran, s.rec.runEnd, s.rec.closed
	s.rec.mu.Unlock()
	if !ran || !runEnd || !closed {
		t.Errorf("deployer: ran %v, Run ended %v, closed %v; want all true", ran, runEnd, closed)
	}
	if running, err := Running(s.dir); err != nil || running {
		t.Errorf("Running after shutdown: got %v, %v; want false", running, err)
	}
	if _, err := os.Stat(SocketPath(s.dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after shutdown: %v, want it removed", err)
	}
	if _, err := Dial(ctx, s.dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Dial after shutdown: got %v, want ErrNotRunning", err)
	}
}

// TestSocketMode: the socket is a socket, 0600, and no temporary entries
// are left in the state dir.
func TestSocketMode(t *testing.T) {
	s := startServer(t, false)
	fi, err := os.Stat(SocketPath(s.dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: got %v, want a socket with 0600", fi.Mode())
	}
	left, _ := filepath.Glob(filepath.Join(s.dir, ".s*"))
	if len(left) != 0 {
		t.Errorf("left in the state dir: %v", left)
	}
}

// TestSecondServeRefused: a second process for the same state dir says
// who holds it, and leaves the first serving.
func TestSecondServeRefused(t *testing.T) {
	s := startServer(t, false)
	err := Run(context.Background(), Config{StateDir: s.dir, Deployer: newRecorder(), noRegistry: true})
	var running *AlreadyRunningError
	if !errors.As(err, &running) {
		t.Fatalf("second Run: got %v, want *AlreadyRunningError", err)
	}
	if running.Pid != os.Getpid() {
		t.Errorf("holder: got pid %d, want %d", running.Pid, os.Getpid())
	}
	if _, err := s.c.Health(context.Background()); err != nil {
		t.Errorf("first server after the refusal: %v", err)
	}
}

// TestStateDirChecks: a world-writable state dir and a socket path too
// long for a Unix socket are refused before anything is created.
func TestStateDirChecks(t *testing.T) {
	ww := t.TempDir()
	if err := os.Chmod(ww, 0o777); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(long, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, dir, want string }{
		{"world-writable", ww, "writable by every user"},
		{"path too long", long, "over the 107 a Unix socket allows"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), Config{StateDir: tt.dir, Deployer: newRecorder(), noRegistry: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
			if _, err := os.Stat(SocketPath(tt.dir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket: %v, want none", err)
			}
		})
	}
}

// TestServeHostsRegistry: the serve process hosts the embedded registry,
// and registry.Ensure (what gantry run calls) uses it.
func TestServeHostsRegistry(t *testing.T) {
	s := startServer(t, true)
	ctx := context.Background()
	h, err := s.c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Registry == "" {
		t.Fatal("health names no registry")
	}
	addr, release, err := registry.Ensure(ctx, s.dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}
	if addr != h.Registry {
		t.Errorf("registry.Ensure: got %s, want the serve-hosted %s", addr, h.Registry)
	}
	if err := registry.Ping(ctx, h.Registry); err != nil {
		t.Errorf("serve-hosted registry after a run released it: %v", err)
	}
}

// TestPeerWithoutCredentialsRefused: the peer check refuses a request
// that did not come over a Unix socket (no credentials).
func TestPeerWithoutCredentialsRefused(t *testing.T) {
	logs := &syncbuf.Buffer{}
	h := RequireUser(os.Getuid(), slog.New(slog.NewTextHandler(logs, nil)), http.NotFoundHandler())
	srv := &http.Server{Handler: h, ConnContext: peerContext}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status: got %d, want 403", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "refused a request without peer credentials") {
		t.Errorf("log: got %q, want the refusal", logs.String())
	}
}
