package analysis

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/util/jsonpath"

	"github.com/gantry-ci/gantry/internal/proc"
)

// provider takes one measurement: the value conditions see as result, and
// its text for the report.
type provider interface {
	measure(ctx context.Context, m Metric) (result any, shown string, err error)
}

var (
	_ provider = (*promProvider)(nil)
	_ provider = (*webProvider)(nil)
	_ provider = (*jobProvider)(nil)
	_ provider = (*gantryProvider)(nil)
)

func newProvider(p Provider, opts Options) (provider, error) {
	switch {
	case p.Prometheus != nil:
		pm := *p.Prometheus
		if opts.PrometheusURL != "" {
			pm.Address = opts.PrometheusURL
		}
		return newPromProvider(&pm)
	case p.Web != nil:
		return newWebProvider(p.Web)
	case p.Job != nil:
		return newJobProvider(p.Job, opts)
	case p.Gantry != nil:
		if opts.Gantry == nil {
			return nil, errors.New("the gantry provider reads a load test gantry runs alongside the analysis; none is running")
		}
		if p.Gantry.Metric == "" || p.Gantry.Stat == "" {
			return nil, errors.New("gantry provider needs metric and stat, e.g. {metric: http_req_duration, stat: \"p(99)\"}")
		}
		if _, err := opts.Gantry.MetricValue(p.Gantry.Metric, p.Gantry.Stat); err != nil {
			return nil, fmt.Errorf("gantry provider: %w", err)
		}
		return &gantryProvider{src: opts.Gantry, cfg: *p.Gantry}, nil
	}
	for _, o := range p.others() {
		if o.node.Kind != 0 {
			return nil, fmt.Errorf("provider %s is not supported by gantry (supported: prometheus, web, job, gantry)", o.name)
		}
	}
	return nil, errors.New("no provider")
}

// headerTransport adds fixed headers to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers []Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for _, h := range t.headers {
		r.Header.Set(h.Key, h.Value)
	}
	return t.base.RoundTrip(r)
}

func tlsConfig(insecure bool, caCert string) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // the template asks for it
	if caCert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caCert)) {
			return nil, errors.New("caCert holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

type promProvider struct {
	api     promv1.API
	timeout time.Duration
}

func newPromProvider(p *PrometheusMetric) (*promProvider, error) {
	if p.Address == "" || p.Query == "" {
		return nil, errors.New("prometheus provider needs address and query")
	}
	if p.RangeQuery.Kind != 0 {
		return nil, errors.New("prometheus rangeQuery is not supported yet; use an instant query")
	}
	if p.Authentication.Kind != 0 {
		return nil, errors.New("prometheus authentication (sigv4, oauth2, basicAuth) is not supported yet; use headers")
	}
	tc, err := tlsConfig(p.Insecure, p.CACert)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tc
	client, err := promapi.NewClient(promapi.Config{
		Address:      p.Address,
		RoundTripper: &headerTransport{base: base, headers: p.Headers},
	})
	if err != nil {
		return nil, fmt.Errorf("prometheus address %q: %w", p.Address, err)
	}
	pp := &promProvider{api: promv1.NewAPI(client), timeout: 30 * time.Second}
	if p.Timeout != nil && *p.Timeout > 0 {
		pp.timeout = time.Duration(*p.Timeout) * time.Second
	}
	return pp, nil
}

// measure runs an instant query. Like Argo, a vector becomes a list of its
// sample values ([]float64, so result[0] works) and a scalar a number.
func (p *promProvider) measure(ctx context.Context, m Metric) (any, string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	val, _, _, err := p.api.Query(ctx, m.Provider.Prometheus.Query, time.Now())
	if err != nil {
		return nil, "", fmt.Errorf("prometheus query: %w", err)
	}
	switch v := val.(type) {
	case model.Vector:
		out := make([]float64, len(v))
		for i, s := range v {
			out[i] = float64(s.Value)
		}
		return out, formatFloats(out), nil
	case *model.Scalar:
		f := float64(v.Value)
		return f, formatFloat(f), nil
	}
	return nil, val.String(), fmt.Errorf("prometheus returned a %s; only vector and scalar results are supported", val.Type())
}

func formatFloat(f float64) string {
	if math.IsNaN(f) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func formatFloats(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = formatFloat(f)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

type webProvider struct {
	client *http.Client
	path   *jsonpath.JSONPath
	body   []byte
}

func newWebProvider(w *WebMetric) (*webProvider, error) {
	if w.URL == "" {
		return nil, errors.New("web provider needs url")
	}
	method := strings.ToUpper(w.Method)
	if method == "" {
		method = http.MethodGet
	}
	if method != http.MethodGet && method != http.MethodPost && method != http.MethodPut {
		return nil, fmt.Errorf("web method %q: want GET, POST or PUT", w.Method)
	}
	wp := &webProvider{}
	if w.Body != "" {
		wp.body = []byte(w.Body)
	}
	if w.JSONBody.Kind != 0 {
		var v any
		if err := w.JSONBody.Decode(&v); err != nil {
			return nil, fmt.Errorf("jsonBody: %w", err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("jsonBody: %w", err)
		}
		wp.body = b
	}
	if wp.body != nil && method == http.MethodGet {
		return nil, errors.New("web provider: a GET request cannot have a body")
	}
	if w.JSONPath != "" {
		jp := jsonpath.New("web")
		if err := jp.Parse(w.JSONPath); err != nil {
			return nil, fmt.Errorf("jsonPath %q: %w", w.JSONPath, err)
		}
		wp.path = jp
	}
	if w.Authentication.Kind != 0 {
		return nil, errors.New("web authentication (sigv4, oauth2) is not supported yet; use headers")
	}
	tc, err := tlsConfig(w.Insecure, "")
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if w.TimeoutSeconds > 0 {
		timeout = time.Duration(w.TimeoutSeconds) * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	wp.client = &http.Client{Timeout: timeout, Transport: tr}
	return wp, nil
}

func (p *webProvider) measure(ctx context.Context, m Metric) (any, string, error) {
	w := m.Provider.Web
	method := strings.ToUpper(w.Method)
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.URL, body)
	if err != nil {
		return nil, "", fmt.Errorf("web request: %w", err)
	}
	for _, h := range w.Headers {
		req.Header.Set(h.Key, h.Value)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("web request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, "", fmt.Errorf("read web response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, "", fmt.Errorf("web request: HTTP %d", resp.StatusCode)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, "", fmt.Errorf("web response is not JSON: %w", err)
	}
	if p.path == nil {
		return doc, string(data), nil
	}
	res, err := p.path.FindResults(doc)
	if err != nil {
		return nil, "", fmt.Errorf("jsonPath %s: %w", w.JSONPath, err)
	}
	if len(res) == 0 || len(res[0]) == 0 {
		return nil, "", fmt.Errorf("jsonPath %s matched nothing", w.JSONPath)
	}
	var v any
	if len(res[0]) == 1 {
		v = res[0][0].Interface()
	} else {
		list := make([]any, len(res[0]))
		for i, r := range res[0] {
			list[i] = r.Interface()
		}
		v = list
	}
	shown, _ := json.Marshal(v)
	return v, string(shown), nil
}

// decided is a result whose phase the provider fixed itself (a job's exit
// code), as Argo's job provider does regardless of conditions.
type decided Phase

// jobProvider runs the first container's command of Argo's Job spec on the
// host; exit code 0 is success.
type jobProvider struct {
	argv    []string
	env     []string
	dir     string
	timeout time.Duration
}

type jobShape struct {
	ActiveDeadlineSeconds int64 `yaml:"activeDeadlineSeconds"`
	Template              struct {
		Spec struct {
			Containers []struct {
				Name    string   `yaml:"name"`
				Command []string `yaml:"command"`
				Args    []string `yaml:"args"`
				Env     []struct {
					Name      string `yaml:"name"`
					Value     string `yaml:"value"`
					ValueFrom *struct {
						SecretKeyRef *SecretKeyRef `yaml:"secretKeyRef"`
					} `yaml:"valueFrom"`
				} `yaml:"env"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

func newJobProvider(j *JobMetric, opts Options) (*jobProvider, error) {
	var shape jobShape
	if j.Spec.Kind == 0 {
		return nil, errors.New("job provider needs spec.template.spec.containers")
	}
	if err := j.Spec.Decode(&shape); err != nil {
		return nil, fmt.Errorf("job spec: %w", err)
	}
	cs := shape.Template.Spec.Containers
	if len(cs) == 0 || len(cs[0].Command)+len(cs[0].Args) == 0 {
		return nil, errors.New("job provider: the first container needs a command (gantry runs it on the host; the image is not used)")
	}
	c := cs[0]
	jp := &jobProvider{argv: append(append([]string(nil), c.Command...), c.Args...), dir: opts.Dir}
	jp.env = append(jp.env, opts.JobEnv...)
	if len(jp.env) == 0 {
		jp.env = os.Environ()
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			var ok bool
			if opts.Secret != nil {
				v, ok = opts.Secret(ref.Name, ref.Key)
			}
			if !ok {
				return nil, fmt.Errorf("job env %s: secret %s key %s not found (set %s)", e.Name, ref.Name, ref.Key, SecretEnvName(ref.Name, ref.Key))
			}
		}
		jp.env = append(jp.env, e.Name+"="+v)
	}
	if shape.ActiveDeadlineSeconds > 0 {
		jp.timeout = time.Duration(shape.ActiveDeadlineSeconds) * time.Second
	}
	return jp, nil
}

func (p *jobProvider) measure(ctx context.Context, _ Metric) (any, string, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	cmd := proc.Command(ctx, p.argv[0], p.argv[1:]...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee interface{ ExitCode() int }
	switch {
	case err == nil:
		return decided(PhaseSuccessful), "exit 0", nil
	case errors.As(err, &ee) && ctx.Err() == nil:
		// A job that ran and failed is a Failed measurement, as in Argo.
		return decided(PhaseFailed), fmt.Sprintf("exit %d: %s", ee.ExitCode(), lastLine(out.String())), nil
	}
	return nil, "", fmt.Errorf("job %s: %w", p.argv[0], err)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

type gantryProvider struct {
	src MetricSource
	cfg GantryMetric
}

func (p *gantryProvider) measure(_ context.Context, _ Metric) (any, string, error) {
	v, err := p.src.MetricValue(p.cfg.Metric, p.cfg.Stat)
	if err != nil {
		return nil, "", err
	}
	return v, formatFloat(v), nil
}

// substStrings replaces in every string (and YAML scalar) of *v, as Argo
// resolves {{args.x}} across the whole metric. Pointers, slices and nodes
// are copied first, so the template itself is left unchanged.
func substStrings(v any, f func(string) string) {
	walk(reflect.ValueOf(v), f)
}

func cloneNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = cloneNode(k)
	}
	return &c
}

var nodeType = reflect.TypeFor[yaml.Node]()

func walk(v reflect.Value, f func(string) string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.CanSet() {
			cp := reflect.New(v.Type().Elem())
			cp.Elem().Set(v.Elem())
			v.Set(cp)
		}
		walk(v.Elem(), f)
	case reflect.Struct:
		if v.Type() == nodeType {
			n := v.Addr().Interface().(*yaml.Node)
			*n = *cloneNode(n)
			walkNode(n, f)
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i), f)
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		if v.CanSet() {
			cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(cp, v)
			v.Set(cp)
		}
		for i := range v.Len() {
			walk(v.Index(i), f)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(f(v.String()))
		}
	}
}

func walkNode(n *yaml.Node, f func(string) string) {
	if n.Kind == yaml.ScalarNode {
		n.Value = f(n.Value)
	}
	for _, c := range n.Content {
		walkNode(c, f)
	}
}
