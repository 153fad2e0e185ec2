package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/monitor"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// Monitor defaults and bounds.
const (
	// DefaultMonitorInterval is how often a monitor without interval:
	// checks.
	DefaultMonitorInterval = 30 * time.Second
	// MinMonitorInterval keeps a monitor from hammering the service.
	MinMonitorInterval = time.Second
	// LocationLocal is the probe agent inside `gantry serve`.
	LocationLocal = "local"
)

// Monitor is one entry of the pipeline's `monitors:` block: a synthetic
// HTTP check run against an environment's active URL after a blue/green
// promotion (docs/monitors.md).
type Monitor struct {
	// Name is the map key.
	Name string `yaml:"-"`
	// Method is the HTTP method (default GET).
	Method string `yaml:"method"`
	// Path is the request path and query, starting with /.
	Path string `yaml:"path"`
	// Header is sent with every request. Values are never shown in
	// messages.
	Header map[string]string `yaml:"header"`
	// Body is the request body, sent as written.
	Body string `yaml:"body"`
	// Status is the expected status code (default 200).
	Status int `yaml:"status"`
	// JSON are assertions on the response body.
	JSON []JSONAssertion `yaml:"json"`
	// Latency is the budget of one check (0: the interval).
	Latency time.Duration `yaml:"latency"`
	// Interval is the time between checks (default 30s).
	Interval time.Duration `yaml:"interval"`
	// Locations are the probe agents that run the check (default
	// [local]): local is the gantry server itself, any other name (a
	// DNS label) the agents started with gantry monitor agent --location.
	Locations []yamlx.String `yaml:"locations"`

	Pos yamlx.Pos       `yaml:"-"`
	At  yamlx.Positions `yaml:"-"`
}

// JSONAssertion is one `json:` entry of a monitor: the value at a dotted
// path of the response body must equal a JSON value.
type JSONAssertion struct {
	// Path is dotted (items.0.status); a backslash escapes a dot or a
	// backslash inside a key.
	Path string `yaml:"path"`
	// Equals is the expected value, any YAML value that has a JSON form.
	Equals yaml.Node `yaml:"equals"`

	Pos yamlx.Pos       `yaml:"-"`
	At  yamlx.Positions `yaml:"-"`

	// equals is Equals as JSON, set by validation.
	equals json.RawMessage
}

// ErrMonitorNotFound is returned (wrapped) by MonitorsFor for a name the
// pipeline does not declare.
var ErrMonitorNotFound = errors.New("monitor not declared")

// MonitorsFor returns the named monitors of p, in the order given, ready to
// run; nil names returns all of them, sorted by name.
func (p *Pipeline) MonitorsFor(names []string) ([]runtime.Monitor, error) {
	if names == nil {
		names = slices.Sorted(mapKeys(p.Monitors))
	}
	out := make([]runtime.Monitor, 0, len(names))
	for _, name := range names {
		m, ok := p.Monitors[name]
		if !ok || m == nil {
			declared := slices.Sorted(mapKeys(p.Monitors))
			have := "it declares none"
			if len(declared) > 0 {
				have = "it declares " + strings.Join(declared, ", ")
			}
			return nil, fmt.Errorf("%w: %s has no monitor %q (%s)", ErrMonitorNotFound, p.File, name, have)
		}
		out = append(out, m.runtime())
	}
	return out, nil
}

// runtime returns the validated monitor as runtime.Monitor.
func (m *Monitor) runtime() runtime.Monitor {
	rm := runtime.Monitor{
		Name:      m.Name,
		Method:    m.Method,
		Path:      m.Path,
		Body:      m.Body,
		Status:    m.Status,
		Latency:   m.Latency,
		Interval:  m.Interval,
		Locations: Files(m.Locations),
	}
	if len(m.Header) > 0 {
		rm.Header = make(map[string]string, len(m.Header))
		for k, v := range m.Header {
			rm.Header[k] = v
		}
	}
	for _, a := range m.JSON {
		rm.JSON = append(rm.JSON, runtime.JSONAssertion{Path: a.Path, Equals: slices.Clone(a.equals)})
	}
	return rm
}

var monitorNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// monitorMethods are the methods a monitor may use.
var monitorMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// headerNameRE is an HTTP field name (RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// validateMonitors checks the monitors: block and fills its defaults.
func (v *validator) validateMonitors(root *yaml.Node) {
	block := mapValue(root, "monitors")
	for _, name := range slices.Sorted(mapKeys(v.p.Monitors)) {
		m := v.p.Monitors[name]
		mn := mapValue(block, name)
		if m == nil {
			m = &Monitor{}
			v.p.Monitors[name] = m
		}
		m.Name = name
		if m.Pos.Line == 0 && mn != nil {
			m.Pos = yamlx.PosOf(mn)
		}
		v.checkMonitor(m, mn)
	}
}

func (v *validator) checkMonitor(m *Monitor, n *yaml.Node) {
	at := func(field string) yamlx.Pos {
		if p, ok := m.At[field]; ok {
			return p
		}
		return m.Pos
	}
	if !monitorNameRE.MatchString(m.Name) {
		v.errAt(m.Pos, "monitor name %q must start with a lower-case letter and hold only a-z, 0-9 and -", m.Name)
	}
	for _, f := range []struct{ field, value string }{{"method", m.Method}, {"path", m.Path}, {"body", m.Body}} {
		if strings.Contains(f.value, "${") {
			v.errAt(at(f.field), "monitor %s: %s may not hold ${...}: monitors run outside any run, after promotion, and are sent as written", m.Name, f.field)
		}
	}
	switch {
	case m.Method == "":
		m.Method = http.MethodGet
	case !slices.Contains(monitorMethods, m.Method):
		v.errAt(at("method"), "monitor %s: method %q is not one of %s", m.Name, m.Method, strings.Join(monitorMethods, ", "))
	}
	v.checkMonitorPath(m, at("path"))
	v.checkMonitorHeader(m, mapValue(n, "header"), at("header"))
	if _, given := m.At["status"]; !given {
		m.Status = http.StatusOK
	} else if m.Status < 100 || m.Status > 599 {
		v.errAt(at("status"), "monitor %s: status %d is not an HTTP status code (100-599)", m.Name, m.Status)
	}
	if _, given := m.At["interval"]; !given {
		m.Interval = DefaultMonitorInterval
	} else if m.Interval < MinMonitorInterval {
		v.errAt(at("interval"), "monitor %s: interval must be at least %s, not %s", m.Name, MinMonitorInterval, m.Interval)
	}
	if _, given := m.At["latency"]; given {
		switch {
		case m.Latency <= 0:
			v.errAt(at("latency"), "monitor %s: latency must be more than 0 (leave it out to allow the whole interval)", m.Name)
		case m.Latency > m.Interval && m.Interval >= MinMonitorInterval:
			v.errAt(at("latency"), "monitor %s: latency %s is longer than the interval %s; a check never runs longer than its interval", m.Name, m.Latency, m.Interval)
		}
	}
	if m.Method == http.MethodHead && len(m.JSON) > 0 {
		v.errAt(at("json"), "monitor %s: json assertions need a body, and a HEAD answer has none", m.Name)
	}
	for i := range m.JSON {
		v.checkJSONAssertion(m, &m.JSON[i])
	}
	if _, given := m.At["locations"]; !given {
		m.Locations = []yamlx.String{{Value: LocationLocal, Pos: m.Pos}}
	} else if len(m.Locations) == 0 {
		v.errAt(at("locations"), "monitor %s: locations is empty; leave it out to run from %s", m.Name, LocationLocal)
	}
	seen := map[string]bool{}
	for _, l := range m.Locations {
		switch {
		case seen[l.Value]:
			v.errAt(l.Pos, "monitor %s: location %q is listed twice", m.Name, l.Value)
		case l.Value == LocationLocal:
		default:
			if err := monitor.ValidLocation(l.Value); err != nil {
				v.errAt(l.Pos, "monitor %s: location: %v; %q is the gantry server itself, any other name a probe agent (gantry monitor agent --location NAME)", m.Name, err, LocationLocal)
			}
		}
		seen[l.Value] = true
	}
}

func (v *validator) checkMonitorPath(m *Monitor, pos yamlx.Pos) {
	switch {
	case m.Path == "":
		v.errAt(pos, "monitor %s needs a path (the request path on the environment's URL, such as /healthz)", m.Name)
		return
	case !strings.HasPrefix(m.Path, "/") || strings.HasPrefix(m.Path, "//"):
		v.errAt(pos, "monitor %s: path %q must start with a single / (it is a path on the environment's URL, not a URL)", m.Name, m.Path)
		return
	case strings.ContainsFunc(m.Path, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		v.errAt(pos, "monitor %s: path may not hold spaces or control characters; percent-encode them", m.Name)
		return
	case strings.Contains(m.Path, "#"):
		v.errAt(pos, "monitor %s: path may not hold a fragment (#...): it is never sent", m.Name)
		return
	}
	if _, err := url.ParseRequestURI(m.Path); err != nil {
		v.errAt(pos, "monitor %s: path %q is not a request path: %v", m.Name, m.Path, errors.Unwrap(err))
	}
}

// checkMonitorHeader checks header names and values; a value is never
// shown (it may hold a token).
func (v *validator) checkMonitorHeader(m *Monitor, n *yaml.Node, pos yamlx.Pos) {
	keyAt := func(key string) yamlx.Pos {
		if n != nil && n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					return yamlx.PosOf(n.Content[i])
				}
			}
		}
		return pos
	}
	canon := map[string]string{}
	for _, k := range slices.Sorted(mapKeys(m.Header)) {
		val := m.Header[k]
		switch {
		case !headerNameRE.MatchString(k):
			v.errAt(keyAt(k), "monitor %s: header name %q is not a valid HTTP field name", m.Name, k)
		case strings.ContainsFunc(val, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }):
			v.errAt(keyAt(k), "monitor %s: header %s: the value may not hold line breaks or other control characters", m.Name, k)
		case strings.Contains(val, "${"):
			v.errAt(keyAt(k), "monitor %s: header %s may not hold ${...}: secrets in monitor headers are not built yet (they would be recorded with the rollout)", m.Name, k)
		}
		c := http.CanonicalHeaderKey(k)
		if other, ok := canon[c]; ok {
			v.errAt(keyAt(k), "monitor %s: header %s is also written as %s (header names ignore case)", m.Name, k, other)
		}
		canon[c] = k
		if c == "Content-Length" || c == "Transfer-Encoding" || c == "Connection" {
			v.errAt(keyAt(k), "monitor %s: header %s is set by gantry from the body; leave it out", m.Name, k)
		}
	}
}

func (v *validator) checkJSONAssertion(m *Monitor, a *JSONAssertion) {
	at := func(field string) yamlx.Pos {
		if p, ok := a.At[field]; ok {
			return p
		}
		return a.Pos
	}
	if _, err := monitor.ParsePath(a.Path); err != nil {
		v.errAt(at("path"), "monitor %s: json path %q: %v", m.Name, a.Path, err)
	}
	if a.Equals.Kind == 0 {
		v.errAt(a.Pos, "monitor %s: json assertion on %q needs equals: (the expected JSON value; write equals: null for null)", m.Name, a.Path)
		return
	}
	var x any
	if err := a.Equals.Decode(&x); err != nil {
		v.errAt(at("equals"), "monitor %s: json %s: equals: %v", m.Name, a.Path, err)
		return
	}
	b, err := json.Marshal(x)
	if err != nil {
		v.errAt(at("equals"), "monitor %s: json %s: equals has no JSON form (mapping keys must be strings, numbers finite): %v", m.Name, a.Path, err)
		return
	}
	a.equals = b
}
