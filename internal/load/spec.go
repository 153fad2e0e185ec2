package load

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// Spec is a load test file: what to request, how fast and what must hold.
//
//	rate: 50
//	duration: 2m
//	thresholds:
//	  http_req_duration: ["p(99)<500"]
//	requests:
//	  - {method: POST, url: http://localhost:8080/payments, body: '{"id": "{{uuid}}"}',
//	     headers: {Content-Type: application/json}, weight: 3, checks: [{status: 201}]}
type Spec struct {
	Rate       float64       `yaml:"rate"`
	Duration   time.Duration `yaml:"duration"`
	StartRate  float64       `yaml:"start_rate"`
	Stages     []Stage       `yaml:"stages"`
	VUs        int           `yaml:"vus"`
	MaxVUs     int           `yaml:"max_vus"`
	Timeout    time.Duration `yaml:"timeout"`
	Thresholds Thresholds    `yaml:"thresholds"`
	Requests   []Request     `yaml:"requests"`
}

// Stage ramps the arrival rate linearly to Target over Duration.
type Stage struct {
	Duration time.Duration `yaml:"duration"`
	Target   float64       `yaml:"target"`
}

// Request is one kind of request in the mix. URL, header values and body
// may use the variables {{uuid}} (a fresh UUID per request), {{seq}} (the
// request's sequence number), {{unix_ms}} and {{rand}} (a random integer).
type Request struct {
	Name    string            `yaml:"name"`
	Method  string            `yaml:"method"`
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	// Weight is the request's share of the mix (default 1).
	Weight int     `yaml:"weight"`
	Checks []Check `yaml:"checks"`
}

// Check is one assertion on a response, counted in the checks metric.
// Status checks the status code; JSON names a field with a JSONPath
// ("{.status}") that must exist and, if Equals is set, equal it.
type Check struct {
	Name   string `yaml:"name"`
	Status int    `yaml:"status"`
	JSON   string `yaml:"json"`
	Equals any    `yaml:"equals"`
}

// Thresholds maps a metric to its thresholds. In YAML each item is a k6
// threshold string or an object {threshold, abortOnFail, delayAbortEval}.
type Thresholds map[string][]ThresholdItem

// ThresholdItem is one threshold as written in a file.
type ThresholdItem struct {
	Threshold      string        `yaml:"threshold"`
	AbortOnFail    bool          `yaml:"abortOnFail"`
	DelayAbortEval time.Duration `yaml:"delayAbortEval"`
}

// UnmarshalYAMLNode accepts a plain string as well as the object form.
func (t *ThresholdItem) UnmarshalYAMLNode(d *yamlx.Decoder, n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.Threshold = n.Value
	} else {
		type plain ThresholdItem
		var p plain
		if err := d.Decode(n, &p); err != nil {
			return err
		}
		*t = ThresholdItem(p)
	}
	if strings.TrimSpace(t.Threshold) == "" {
		return fmt.Errorf("threshold is empty")
	}
	return nil
}

// Compile parses every threshold, sorted by metric for stable output.
func (ts Thresholds) Compile() ([]Threshold, error) {
	metrics := make([]string, 0, len(ts))
	for m := range ts {
		metrics = append(metrics, m)
	}
	sort.Strings(metrics)
	var out []Threshold
	for _, m := range metrics {
		for _, it := range ts[m] {
			t, err := NewThreshold(m, it.Threshold)
			if err != nil {
				return nil, err
			}
			t.AbortOnFail, t.DelayAbortEval = it.AbortOnFail, it.DelayAbortEval
			out = append(out, t)
		}
	}
	return out, nil
}

// ParseSpec decodes a spec file strictly; errors name file:line:col.
func ParseSpec(file string, data []byte) (*Spec, error) {
	var s Spec
	if err := yamlx.Decode(file, data, &s); err != nil {
		return nil, err
	}
	for i, r := range s.Requests {
		if _, err := compileRequest(r); err != nil {
			return nil, fmt.Errorf("%s: requests[%d]: %w", file, i, err)
		}
	}
	if _, err := s.Thresholds.Compile(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &s, nil
}

// tmplStr is a string with {{var}} placeholders, split once.
type tmplStr struct {
	parts []string // literal, var, literal, var, ... literal
}

var knownVars = map[string]bool{"uuid": true, "seq": true, "unix_ms": true, "rand": true}

func parseTmpl(s string) (tmplStr, error) {
	var t tmplStr
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.parts = append(t.parts, s)
			return t, nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return t, fmt.Errorf("unclosed {{ in %q", s)
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		if !knownVars[name] {
			return t, fmt.Errorf("unknown variable {{%s}} (known: uuid, seq, unix_ms, rand)", name)
		}
		t.parts = append(t.parts, s[:i], name)
		s = s[i+j+2:]
	}
}

func (t tmplStr) static() bool { return len(t.parts) == 1 }

func (t tmplStr) expand(vars func(string) string) string {
	if t.static() {
		return t.parts[0]
	}
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 1 {
			b.WriteString(vars(p))
		} else {
			b.WriteString(p)
		}
	}
	return b.String()
}

type header struct {
	name  string
	value tmplStr
}

type compiledRequest struct {
	name      string
	method    string
	url       tmplStr
	headers   []header
	body      tmplStr
	weight    int
	checks    []compiledCheck
	needsJSON bool
	// fixed is the prebuilt request when nothing varies per request.
	fixed *fasthttp.Request
}

func compileRequest(r Request) (*compiledRequest, error) {
	c := &compiledRequest{name: r.Name, method: strings.ToUpper(r.Method), weight: r.Weight}
	if c.method == "" {
		c.method = http.MethodGet
	}
	if c.weight == 0 {
		c.weight = 1
	}
	if c.weight < 0 {
		return nil, fmt.Errorf("weight %d must be positive", r.Weight)
	}
	var err error
	if c.url, err = parseTmpl(r.URL); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	probe := c.url.expand(func(string) string { return "0" })
	u, err := url.Parse(probe)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want an absolute http(s) URL", r.URL)
	}
	if c.name == "" {
		c.name = c.method + " " + r.URL
	}
	if c.body, err = parseTmpl(r.Body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := parseTmpl(r.Headers[k])
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		c.headers = append(c.headers, header{name: k, value: v})
	}
	static := c.url.static() && r.Body == ""
	for _, h := range c.headers {
		static = static && h.value.static()
	}
	if static {
		c.fixed = &fasthttp.Request{}
		buildRequest(c, c.fixed, nil)
	}
	for i, ch := range r.Checks {
		cc, err := compileCheck(ch)
		if err != nil {
			return nil, fmt.Errorf("checks[%d]: %w", i, err)
		}
		if cc.json != nil {
			c.needsJSON = true
		}
		c.checks = append(c.checks, cc)
	}
	return c, nil
}

func checkName(ch Check) string {
	if ch.Name != "" {
		return ch.Name
	}
	if ch.Status != 0 {
		return "status is " + strconv.Itoa(ch.Status)
	}
	if ch.Equals != nil {
		return fmt.Sprintf("%s == %v", ch.JSON, ch.Equals)
	}
	return ch.JSON + " exists"
}
