// Package promenv runs a Prometheus for an environment: the real
// Prometheus server (Debian's /usr/bin/prometheus) as a supervised child
// process, with a configuration gantry writes — the environment's
// instances as file_sd targets that the caller keeps current with
// SetTargets, the environment's alert rules (checked with `promtool check
// rules` first), a short scrape and evaluation interval — and its alerts
// read from the HTTP API (/api/v1/alerts).
package promenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/service/localproc"
)

// DefaultInterval is the scrape and rule evaluation interval.
const DefaultInterval = 5 * time.Second

// Config says how to run an environment's Prometheus.
type Config struct {
	// Environment names the environment; it becomes the `namespace` label
	// of every scraped series, as on Kubernetes.
	Environment string
	// Job is the scrape job's name (the `job` label the rules select on,
	// e.g. payment-service); default the environment's name.
	Job string
	// MetricsPath is scraped on every target; default /metrics.
	MetricsPath string
	// Rules are the environment's alert rule files.
	Rules []runtime.File
	// Dir holds the configuration, the targets file, the rules, the port
	// and the TSDB data. It survives restarts.
	Dir string
	// Interval is the scrape and evaluation interval; default 5s.
	Interval time.Duration
	// Prometheus and Promtool are the binaries; "" finds them on PATH.
	Prometheus string
	Promtool   string
	// Log receives start, restart and stop messages; nil discards.
	Log *slog.Logger
}

// ErrNotInstalled is wrapped when prometheus or promtool is missing.
var ErrNotInstalled = localproc.ErrNotInstalled

// RulesError is a rule file that promtool refused; it names the file.
type RulesError struct {
	File   string
	Detail string // promtool's account, without the temporary path
}

func (e *RulesError) Error() string {
	return fmt.Sprintf("alert rules %s: %s", e.File, e.Detail)
}

// Server is a running Prometheus, restarted with backoff when it exits
// until Stop.
type Server struct {
	cfg     Config
	port    int
	targets string
	log     *slog.Logger

	mu   sync.Mutex
	proc *localproc.Process

	stop chan struct{}
	done chan struct{}
}

// CheckRules writes the rule files to dir and runs `promtool check rules`
// on each; a refusal is a *RulesError naming the file.
func CheckRules(ctx context.Context, promtool string, rules []runtime.File, dir string) ([]string, error) {
	if promtool == "" {
		p, err := localproc.LookPath("promtool", "apt-get install prometheus")
		if err != nil {
			return nil, err
		}
		promtool = p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write alert rules: %w", err)
	}
	var paths []string
	for i, f := range rules {
		name := fmt.Sprintf("%02d-%s", i, safeName(filepath.Base(f.Name)))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return nil, fmt.Errorf("write alert rules %s: %w", f.Name, err)
		}
		cmd := proc.Command(ctx, promtool, "check", "rules", path)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				return nil, fmt.Errorf("promtool check rules %s: %w", f.Name, err)
			}
			detail := strings.TrimSpace(strings.ReplaceAll(out.String(), path, f.Name))
			return nil, &RulesError{File: f.Name, Detail: detail}
		}
		paths = append(paths, path)
	}
	return paths, nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// Start checks the rules, writes the configuration and starts Prometheus,
// returning once it is ready. The port recorded in Dir by an earlier start
// is reused when it is free, so the URL stays the same across restarts.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Environment == "" || cfg.Dir == "" {
		return nil, errors.New("promenv: Environment and Dir are required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("prometheus for %s: %w", cfg.Environment, err)
	}
	cfg.Dir = dir
	if cfg.Job == "" {
		cfg.Job = cfg.Environment
	}
	if cfg.MetricsPath == "" {
		cfg.MetricsPath = "/metrics"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Prometheus == "" {
		p, err := localproc.LookPath("prometheus", "apt-get install prometheus")
		if err != nil {
			return nil, fmt.Errorf("prometheus for %s: %w", cfg.Environment, err)
		}
		cfg.Prometheus = p
	}
	rulesDir := filepath.Join(cfg.Dir, "rules")
	if err := os.RemoveAll(rulesDir); err != nil {
		return nil, fmt.Errorf("prometheus for %s: %w", cfg.Environment, err)
	}
	rulePaths, err := CheckRules(ctx, cfg.Promtool, cfg.Rules, rulesDir)
	if err != nil {
		return nil, fmt.Errorf("prometheus for %s: %w", cfg.Environment, err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, targets: filepath.Join(cfg.Dir, "targets.json"), stop: make(chan struct{}), done: make(chan struct{})}
	if _, err := os.Stat(s.targets); errors.Is(err, os.ErrNotExist) {
		if err := s.SetTargets(nil); err != nil {
			return nil, err
		}
	}
	if err := s.writeConfig(rulePaths); err != nil {
		return nil, err
	}
	if s.port, err = s.recordPort(); err != nil {
		return nil, err
	}
	p, err := s.start(ctx)
	if err != nil {
		return nil, err
	}
	s.proc = p
	go s.supervise() // owned by s: Stop waits for done
	return s, nil
}

type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files,omitempty"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName       string `yaml:"job_name"`
	MetricsPath   string `yaml:"metrics_path"`
	FileSDConfigs []struct {
		Files           []string `yaml:"files"`
		RefreshInterval string   `yaml:"refresh_interval"`
	} `yaml:"file_sd_configs"`
}

func (s *Server) writeConfig(rules []string) error {
	var c promConfig
	iv := model(s.cfg.Interval)
	c.Global.ScrapeInterval, c.Global.EvaluationInterval = iv, iv
	c.RuleFiles = rules
	sc := scrapeConfig{JobName: s.cfg.Job, MetricsPath: s.cfg.MetricsPath}
	sc.FileSDConfigs = make([]struct {
		Files           []string `yaml:"files"`
		RefreshInterval string   `yaml:"refresh_interval"`
	}, 1)
	sc.FileSDConfigs[0].Files = []string{s.targets}
	sc.FileSDConfigs[0].RefreshInterval = iv
	c.ScrapeConfigs = []scrapeConfig{sc}
	data, err := yaml.Marshal(&c)
	if err != nil {
		return fmt.Errorf("prometheus for %s: encode config: %w", s.cfg.Environment, err)
	}
	return writeFile(filepath.Join(s.cfg.Dir, "prometheus.yml"), data)
}

// model formats d as a Prometheus duration ("5s", "1500ms").
func model(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// writeFile replaces path atomically (Prometheus watches the targets file:
// it must never see half of one).
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SetTargets replaces the scraped instances (host:port each); Prometheus
// picks the change up from the file within an interval.
func (s *Server) SetTargets(addrs []string) error {
	return s.SetTargetGroups([]TargetGroup{{Targets: addrs}})
}

// TargetGroup is a set of scraped instances with labels of their own, as
// Kubernetes service discovery gives a target the Service it is behind:
// {Labels: {"service": "payment-service-preview"}} makes the preview
// instances' series answer {service="payment-service-preview"}.
type TargetGroup struct {
	Targets []string
	Labels  map[string]string
}

// SetTargetGroups replaces the scraped instances by groups; every series
// also gets the `namespace` label (the environment). An instance in two
// groups is scraped once per group, as behind two Services.
func (s *Server) SetTargetGroups(groups []TargetGroup) error {
	out := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		labels := map[string]string{}
		for k, v := range g.Labels {
			labels[k] = v
		}
		labels["namespace"] = s.cfg.Environment
		out = append(out, map[string]any{
			"targets": append([]string{}, slices.Sorted(slices.Values(g.Targets))...),
			"labels":  labels,
		})
	}
	data, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("prometheus targets of %s: %w", s.cfg.Environment, err)
	}
	return writeFile(s.targets, data)
}

// recordPort reads the port recorded in Dir, or picks a free one and
// records it; a recorded port taken by something else is replaced.
func (s *Server) recordPort() (int, error) {
	path := filepath.Join(s.cfg.Dir, "port")
	if b, err := os.ReadFile(path); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 && portFree(p) {
			return p, nil
		}
	}
	p, err := localproc.FreePort()
	if err != nil {
		return 0, err
	}
	return p, writeFile(path, []byte(strconv.Itoa(p)+"\n"))
}

func portFree(p int) bool {
	return localproc.TCPReady(localproc.Addr(p))(context.Background()) != nil
}

// URL is the server's base URL (http://127.0.0.1:PORT).
func (s *Server) URL() string { return "http://" + localproc.Addr(s.port) }

func (s *Server) start(ctx context.Context) (*localproc.Process, error) {
	cmd := exec.Command(s.cfg.Prometheus,
		"--config.file="+filepath.Join(s.cfg.Dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(s.cfg.Dir, "data"),
		"--web.listen-address="+localproc.Addr(s.port),
		"--storage.tsdb.retention.time=2d",
		"--log.level=warn",
	)
	cmd.Dir = s.cfg.Dir
	p, err := localproc.Start(ctx, "prometheus", cmd)
	if err != nil {
		return nil, fmt.Errorf("prometheus for %s: %w", s.cfg.Environment, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.WaitReady(wctx, s.ready); err != nil {
		_ = p.Stop(context.WithoutCancel(ctx), syscall.SIGTERM)
		return nil, fmt.Errorf("prometheus for %s: %w", s.cfg.Environment, err)
	}
	s.log.InfoContext(ctx, "prometheus ready", "environment", s.cfg.Environment, "url", s.URL())
	return p, nil
}

func (s *Server) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/-/ready: %s", resp.Status)
	}
	return nil
}

// supervise restarts Prometheus when it exits, with a backoff from 1s
// doubling to 1m, until Stop.
func (s *Server) supervise() {
	defer close(s.done)
	backoff := time.Second
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		if !p.Exited() {
			continue
		}
		s.log.Warn("prometheus exited; restarting", "environment", s.cfg.Environment, "in", backoff, "output", lastLine(p.Output()))
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
		np, err := s.start(context.Background())
		if err != nil {
			s.log.Error("prometheus restart failed", "environment", s.cfg.Environment, "err", err)
			continue
		}
		s.mu.Lock()
		s.proc = np
		s.mu.Unlock()
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Stop ends Prometheus and its supervision; the data directory is kept.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil || p.Exited() {
		return nil
	}
	return p.Stop(ctx, syscall.SIGTERM)
}

// Pid is the process id of the running Prometheus (for tests and status).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.Pid()
}

// Alerts reads the server's pending and firing alerts.
func (s *Server) Alerts(ctx context.Context) ([]Alert, error) {
	return Client{URL: s.URL()}.Alerts(ctx)
}
