package sqs

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/service/localproc"
)

func TestStartUseStop(t *testing.T) {
	ctx := context.Background()
	p := Provider{Queues: []string{"payment-webhooks", "dlq"}}
	if _, err := p.server(ctx, 1); err != nil {
		t.Skipf("%v", err)
	}
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
	t.Setenv("GANTRY_STATE_DIR", "")
	_, err := Provider{}.Start(context.Background(), t.TempDir())
	if !errors.Is(err, localproc.ErrNotInstalled) || !strings.Contains(err.Error(), "npm install -g fauxqs") {
		t.Errorf("err = %v", err)
	}
}
