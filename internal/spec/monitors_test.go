package spec

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/monitor"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/schema"
)

const monitorsGood = `name: p
monitors:
  health:
    path: /healthz
    json: [{path: status, equals: ok}]
  payment-intent:
    method: POST
    path: /v1/payment_intents?expand=none
    header: {Content-Type: application/json, Authorization: Bearer s3cr3t-t0ken}
    body: '{"amount": 100, "currency": "usd"}'
    status: 201
    json:
      - {path: amount, equals: 100}
      - {path: status, equals: requires_confirmation}
      - {path: metadata, equals: {a: [1, true, null]}}
      - {path: 'labels.app\.kubernetes\.io/name', equals: null}
    latency: 500ms
    interval: 10s
    locations: [local, eu-west-1, dc2]
` + envStages

func TestMonitorsGood(t *testing.T) {
	p, err := Parse("p.yaml", []byte(monitorsGood), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	all, err := p.MonitorsFor(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.Monitor{
		{
			Name: "health", Method: "GET", Path: "/healthz", Status: 200,
			JSON:     []runtime.JSONAssertion{{Path: "status", Equals: json.RawMessage(`"ok"`)}},
			Interval: 30 * time.Second, Locations: []string{"local"},
		},
		{
			Name: "payment-intent", Method: "POST", Path: "/v1/payment_intents?expand=none",
			Header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer s3cr3t-t0ken"},
			Body:   `{"amount": 100, "currency": "usd"}`, Status: 201,
			JSON: []runtime.JSONAssertion{
				{Path: "amount", Equals: json.RawMessage(`100`)},
				{Path: "status", Equals: json.RawMessage(`"requires_confirmation"`)},
				{Path: "metadata", Equals: json.RawMessage(`{"a":[1,true,null]}`)},
				{Path: `labels.app\.kubernetes\.io/name`, Equals: json.RawMessage(`null`)},
			},
			Latency: 500 * time.Millisecond, Interval: 10 * time.Second, Locations: []string{"local", "eu-west-1", "dc2"},
		},
	}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("MonitorsFor(nil):\ngot  %+v\nwant %+v", all, want)
	}
	some, err := p.MonitorsFor([]string{"payment-intent", "health"})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{some[0].Name, some[1].Name}; !reflect.DeepEqual(got, []string{"payment-intent", "health"}) {
		t.Errorf("MonitorsFor(names) order: got %v", got)
	}
	// The result is a copy: changing it leaves the pipeline alone.
	some[0].Header["Authorization"] = "changed"
	if p.Monitors["payment-intent"].Header["Authorization"] != "Bearer s3cr3t-t0ken" {
		t.Error("MonitorsFor shares the header map with the pipeline")
	}
}

func TestMonitorsForUnknown(t *testing.T) {
	p, err := Parse("p.yaml", []byte(monitorsGood), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.MonitorsFor([]string{"health", "checkout"})
	if !errors.Is(err, ErrMonitorNotFound) {
		t.Fatalf("error %v: want ErrMonitorNotFound", err)
	}
	if want := `p.yaml has no monitor "checkout" (it declares health, payment-intent)`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	empty, err := Parse("p.yaml", []byte("name: p\n"+envStages), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := empty.MonitorsFor(nil); err != nil || len(ms) != 0 {
		t.Errorf("no monitors: got %v, %v; want none and no error", ms, err)
	}
	if _, err := empty.MonitorsFor([]string{"health"}); !errors.Is(err, ErrMonitorNotFound) || !strings.Contains(err.Error(), "it declares none") {
		t.Errorf("error %v: want ErrMonitorNotFound saying it declares none", err)
	}
}

func TestMonitorsErrors(t *testing.T) {
	tests := []struct {
		name string
		mon  string // the monitor's mapping, on line 3 after "  m: "
		want string
	}{
		{"no path", "{method: GET}", "p.yaml:3:6: monitor m needs a path"},
		{"relative path", "{path: healthz}", `p.yaml:3:13: monitor m: path "healthz" must start with a single /`},
		{"scheme-relative path", "{path: //evil.example/x}", `p.yaml:3:13: monitor m: path "//evil.example/x" must start with a single /`},
		{"full URL", "{path: 'http://x/healthz'}", "must start with a single /"},
		{"space in path", "{path: '/a b'}", "p.yaml:3:13: monitor m: path may not hold spaces"},
		{"fragment", "{path: '/a#b'}", "path may not hold a fragment"},
		{"template in path", "{path: '/x/${git.sha}'}", "p.yaml:3:13: monitor m: path may not hold ${...}"},
		{"unknown method", "{path: /, method: get}", `p.yaml:3:24: monitor m: method "get" is not one of GET, HEAD`},
		{"status out of range", "{path: /, status: 42}", "p.yaml:3:24: monitor m: status 42 is not an HTTP status code"},
		{"status not a number", "{path: /, status: ok}", `p.yaml:3:24: expected an integer, got "ok"`},
		{"interval too short", "{path: /, interval: 100ms}", "p.yaml:3:26: monitor m: interval must be at least 1s, not 100ms"},
		{"bad duration", "{path: /, interval: often}", `p.yaml:3:26: invalid duration "often"`},
		{"latency over interval", "{path: /, latency: 2m}", "p.yaml:3:25: monitor m: latency 2m0s is longer than the interval 30s"},
		{"latency zero", "{path: /, latency: 0s}", "p.yaml:3:25: monitor m: latency must be more than 0"},
		{"location upper case", "{path: /, locations: [local, EU-West]}", `p.yaml:3:35: monitor m: location: invalid location name "EU-West": want 1 to 63 of a-z, 0-9 and -`},
		{"location with a dot", "{path: /, locations: [eu.west]}", `p.yaml:3:28: monitor m: location: invalid location name "eu.west"`},
		{"location ends with -", "{path: /, locations: [eu-]}", `p.yaml:3:28: monitor m: location: invalid location name "eu-"`},
		{"location too long", "{path: /, locations: [" + strings.Repeat("a", 64) + "]}", `p.yaml:3:28: monitor m: location: invalid location name "aaaa`},
		{"location twice", "{path: /, locations: [eu-west, eu-west]}", `p.yaml:3:37: monitor m: location "eu-west" is listed twice`},
		{"location twice", "{path: /, locations: [local, local]}", `p.yaml:3:35: monitor m: location "local" is listed twice`},
		{"no locations", "{path: /, locations: []}", "p.yaml:3:27: monitor m: locations is empty"},
		{"bad header name", "{path: /, header: {'X Token': a}}", `p.yaml:3:25: monitor m: header name "X Token" is not a valid HTTP field name`},
		{"secret in header", "{path: /, header: {Authorization: 'Bearer ${secrets.TOKEN}'}}", "p.yaml:3:25: monitor m: header Authorization may not hold ${...}: secrets in monitor headers are not built yet"},
		{"header twice", "{path: /, header: {x-a: '1', X-A: '2'}}", "p.yaml:3:25: monitor m: header x-a is also written as X-A"},
		{"content-length", "{path: /, header: {Content-Length: '3'}}", "monitor m: header Content-Length is set by gantry"},
		{"json empty key", "{path: /, json: [{path: a..b, equals: 1}]}", `p.yaml:3:30: monitor m: json path "a..b": empty key at offset 2`},
		{"json bad escape", `{path: /, json: [{path: 'a\b', equals: 1}]}`, `monitor m: json path "a\\b": the backslash at offset 1 escapes neither`},
		{"json without equals", "{path: /, json: [{path: status}]}", `p.yaml:3:23: monitor m: json assertion on "status" needs equals:`},
		{"json equals non-string keys", "{path: /, json: [{path: a, equals: {1: x}}]}", "p.yaml:3:41: monitor m: json a: equals has no JSON form"},
		{"json equals infinity", "{path: /, json: [{path: a, equals: .inf}]}", "monitor m: json a: equals has no JSON form"},
		{"json on HEAD", "{path: /, method: HEAD, json: [{path: a, equals: 1}]}", "p.yaml:3:36: monitor m: json assertions need a body, and a HEAD answer has none"},
		{"unknown field", "{path: /, url: /x}", `p.yaml:3:16: unknown field "url"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "name: p\nmonitors:\n  m: " + tt.mon + "\n" + envStages
			_, err := Parse("p.yaml", []byte(src), testRegistry())
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s", err, tt.want)
			}
		})
	}
}

func TestMonitorBadName(t *testing.T) {
	src := "name: p\nmonitors:\n  Health: {path: /}\n" + envStages
	_, err := Parse("p.yaml", []byte(src), testRegistry())
	if want := `p.yaml:3:11: monitor name "Health" must start with a lower-case letter`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v: want %q", err, want)
	}
}

// TestMonitorHeaderValueNeverShown: a header value may be a token; no
// validation message repeats it.
func TestMonitorHeaderValueNeverShown(t *testing.T) {
	src := "name: p\nmonitors:\n  m: {path: /, header: {Authorization: \"Bearer tok3n-value\\r\\nX: y\", 'X-Key': '${tok3n-other}', X-Bell: \"tok3n\\a\"}}\n" + envStages
	_, err := Parse("p.yaml", []byte(src), testRegistry())
	if err == nil {
		t.Fatal("no error for a header value with a line break")
	}
	for _, want := range []string{"header Authorization: the value may not hold line breaks or other control characters", "header X-Key may not hold ${...}", "header X-Bell: the value may not hold"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "tok3n") {
		t.Errorf("error shows a header value: %v", err)
	}
}

func TestParseEnvironmentsReadsMonitors(t *testing.T) {
	p, err := ParseEnvironments("p.yaml", []byte(monitorsGood), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.MonitorsFor([]string{"health"})
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Interval != DefaultMonitorInterval || ms[0].Method != "GET" {
		t.Errorf("defaults not applied: %+v", ms[0])
	}
	_, err = ParseEnvironments("p.yaml", []byte("name: p\nmonitors:\n  m: {path: x}\n"), nil, "")
	if want := `p.yaml:3:13: monitor m: path "x" must start`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v: want %q", err, want)
	}
}

func TestSchemaMonitor(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(schema.Pipeline, &s); err != nil {
		t.Fatal(err)
	}
	mon := s["$defs"].(map[string]any)["monitor"].(map[string]any)
	keys := func(m any) []string {
		var out []string
		for k := range m.(map[string]any)["properties"].(map[string]any) {
			out = append(out, k)
		}
		return sorted(out)
	}
	if got, want := keys(mon), yamlFields(reflect.TypeFor[Monitor]()); !reflect.DeepEqual(got, want) {
		t.Errorf("monitor schema properties %v, Go fields %v", got, want)
	}
	item := mon["properties"].(map[string]any)["json"].(map[string]any)["items"]
	if got, want := keys(item), yamlFields(reflect.TypeFor[JSONAssertion]()); !reflect.DeepEqual(got, want) {
		t.Errorf("json assertion schema properties %v, Go fields %v", got, want)
	}
}

// TestExampleMonitors reads the payment example's pipeline: its monitors
// are valid and check the service's health and a payment-intent round
// trip.
func TestExampleMonitors(t *testing.T) {
	const file = "../../examples/payment-service/.gantry/pipeline.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseEnvironments(file, data, []string{"postgres", "redis", "sqs"}, "../../examples/payment-service")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.MonitorsFor([]string{"health", "payment-intent"})
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Path != "/healthz" || ms[1].Method != "POST" || ms[1].Path != "/v1/payment_intents" || ms[1].Status != 201 {
		t.Errorf("example monitors: %+v", ms)
	}
}

// FuzzMonitors: any monitors: block is refused with an error or yields
// monitors whose paths parse and whose expected values are JSON.
func FuzzMonitors(f *testing.F) {
	f.Add([]byte(monitorsGood))
	f.Add([]byte("name: p\nmonitors:\n  m: {path: /, json: [{path: 'a\\.b.0', equals: {x: [1, null]}}]}\n" + envStages))
	f.Add([]byte("name: p\nmonitors:\n  m: {path: /, header: {A: b}, latency: 1s, interval: 1s, locations: [local]}\n" + envStages))
	f.Add([]byte("name: p\nmonitors:\n  m:\n" + envStages))
	f.Add([]byte("name: p\nmonitors: &a {m: {path: /, json: [{path: x, equals: *a}]}}\n" + envStages))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, testRegistry())
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		ms, err := p.MonitorsFor(nil)
		if err != nil {
			t.Fatalf("MonitorsFor(nil) of a valid pipeline: %v", err)
		}
		for _, m := range ms {
			if !strings.HasPrefix(m.Path, "/") || m.Interval < MinMonitorInterval || m.Status < 100 || len(m.Locations) == 0 {
				t.Fatalf("monitor %s not validated or defaulted: %+v", m.Name, m)
			}
			for _, a := range m.JSON {
				if _, err := monitor.ParsePath(a.Path); err != nil {
					t.Fatalf("monitor %s: path %q passed validation: %v", m.Name, a.Path, err)
				}
				if !json.Valid(a.Equals) {
					t.Fatalf("monitor %s: equals %q is not JSON", m.Name, a.Equals)
				}
			}
		}
	})
}
