// Package redis provides the `redis` service: a throwaway redis-server on a
// free loopback port with its own data directory and no persistence; or,
// for an environment, a server whose data (an append-only file) is kept.
package redis

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/service/localproc"
)

// Provider starts redis-server.
type Provider struct {
	// Bin is the server binary; "" finds redis-server on PATH.
	Bin string
}

var (
	_ service.Provider = Provider{}
	_ service.Keeper   = Provider{}
)

// Instance is a running server.
// Instance is a running server.
type Instance struct {
	localproc.Instance
}

var _ service.Instance = (*Instance)(nil)

// Start implements service.Provider.
func (p Provider) Start(ctx context.Context, dir string) (service.Instance, error) {
	return p.start(ctx, dir, false)
}

// StartKept implements service.Keeper: the data lives in dir as an
// append-only file, written to before each write is acknowledged (so a
// killed server loses nothing it acknowledged; fsync every second guards
// against a machine crash) and kept by Stop.
func (p Provider) StartKept(ctx context.Context, dir string) (service.Instance, error) {
	return p.start(ctx, dir, true)
}

func (p Provider) start(ctx context.Context, dir string, keep bool) (service.Instance, error) {
	bin := p.Bin
	if bin == "" {
		var err error
		if bin, err = localproc.LookPath("redis-server", "apt-get install redis-server (Debian/Ubuntu)"); err != nil {
			return nil, fmt.Errorf("redis service: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis service: %w", err)
	}
	dataDir := dir
	persist := []string{"--save", "", "--appendonly", "no"}
	if keep {
		persist = []string{"--save", "", "--appendonly", "yes", "--appendfsync", "everysec"}
	} else {
		var err error
		if dataDir, err = os.MkdirTemp(dir, "redis-"); err != nil {
			return nil, fmt.Errorf("redis service: create data dir: %w", err)
		}
	}
	port, err := localproc.FreePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dataDir}, persist...)
	cmd := exec.Command(bin, append(args, "--daemonize", "no", "--protected-mode", "yes")...)
	cmd.Dir = dataDir
	proc, err := localproc.Start(ctx, "redis-server", cmd)
	if err != nil {
		if !keep {
			_ = os.RemoveAll(dataDir)
		}
		return nil, fmt.Errorf("redis service: %w", err)
	}
	addr := localproc.Addr(port)
	inst := &Instance{localproc.Instance{Name: "redis", Proc: proc, DataDir: dataDir, Keep: keep, Vars: map[string]string{
		"REDIS_URL":  "redis://" + addr + "/0",
		"REDIS_ADDR": addr,
	}}}
	if err := proc.WaitReady(ctx, ping(addr)); err != nil {
		_ = inst.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("redis service: %w", err)
	}
	return inst, nil
}

// ping checks that the server answers PING with PONG.
func ping(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != "+PONG" {
			return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
		}
		return nil
	}
}
