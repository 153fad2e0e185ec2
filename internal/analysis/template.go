// Package analysis runs Argo Rollouts AnalysisTemplates: it reads Argo's
// YAML unchanged, takes measurements from providers (Prometheus, web, job,
// and gantry's own load metrics) at each metric's interval, judges them with
// Argo's condition language and result semantics, and reports the run.
package analysis

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// Template is an AnalysisTemplate or ClusterAnalysisTemplate.
type Template struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata is the part of Kubernetes object metadata templates carry.
type Metadata struct {
	Name         string            `yaml:"name"`
	GenerateName string            `yaml:"generateName"`
	Namespace    string            `yaml:"namespace"`
	Labels       map[string]string `yaml:"labels"`
	Annotations  map[string]string `yaml:"annotations"`
}

// Spec is the template's spec.
type Spec struct {
	Args                 []Argument  `yaml:"args"`
	Metrics              []Metric    `yaml:"metrics"`
	DryRun               []MetricRef `yaml:"dryRun"`
	MeasurementRetention []yaml.Node `yaml:"measurementRetention"`
}

// Argument is a template argument; its value is given, comes from a
// secret, or must be supplied when the run starts.
type Argument struct {
	Name      string     `yaml:"name"`
	Value     *string    `yaml:"value"`
	ValueFrom *ValueFrom `yaml:"valueFrom"`
}

// ValueFrom takes an argument's value from a secret (or, in Kubernetes,
// from a field of the Rollout, which gantry does not have).
type ValueFrom struct {
	SecretKeyRef *SecretKeyRef `yaml:"secretKeyRef"`
	FieldRef     *struct {
		FieldPath string `yaml:"fieldPath"`
	} `yaml:"fieldRef"`
}

// SecretKeyRef names one key of a secret.
type SecretKeyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

// MetricRef selects metrics by name (a regular expression) for dryRun.
type MetricRef struct {
	MetricName string `yaml:"metricName"`
}

// Metric is one metric of a template. Durations and counts are strings
// because Argo lets them be {{args.x}} placeholders.
type Metric struct {
	Name                    string `yaml:"name"`
	Interval                string `yaml:"interval"`
	InitialDelay            string `yaml:"initialDelay"`
	Count                   string `yaml:"count"`
	SuccessCondition        string `yaml:"successCondition"`
	FailureCondition        string `yaml:"failureCondition"`
	FailureLimit            string `yaml:"failureLimit"`
	InconclusiveLimit       string `yaml:"inconclusiveLimit"`
	ConsecutiveErrorLimit   string `yaml:"consecutiveErrorLimit"`
	ConsecutiveSuccessLimit string `yaml:"consecutiveSuccessLimit"`
	// MaxFailures is the pre-v0.6 name of failureLimit, still found in
	// Argo's examples.
	MaxFailures string   `yaml:"maxFailures"`
	Provider    Provider `yaml:"provider"`
}

// Provider is where a metric's measurements come from. gantry runs
// prometheus, web, job and gantry; the other Argo providers parse, and
// running them is an error that names them.
type Provider struct {
	Prometheus *PrometheusMetric `yaml:"prometheus"`
	Web        *WebMetric        `yaml:"web"`
	Job        *JobMetric        `yaml:"job"`
	Gantry     *GantryMetric     `yaml:"gantry"`

	Kayenta    yaml.Node `yaml:"kayenta"`
	Datadog    yaml.Node `yaml:"datadog"`
	Wavefront  yaml.Node `yaml:"wavefront"`
	NewRelic   yaml.Node `yaml:"newRelic"`
	CloudWatch yaml.Node `yaml:"cloudWatch"`
	Graphite   yaml.Node `yaml:"graphite"`
	Influxdb   yaml.Node `yaml:"influxdb"`
	SkyWalking yaml.Node `yaml:"skywalking"`
	Plugin     yaml.Node `yaml:"plugin"`
}

// PrometheusMetric is an instant query through the Prometheus HTTP API.
type PrometheusMetric struct {
	Address        string    `yaml:"address"`
	CACert         string    `yaml:"caCert"`
	Query          string    `yaml:"query"`
	Timeout        *int64    `yaml:"timeout"`
	Insecure       bool      `yaml:"insecure"`
	Headers        []Header  `yaml:"headers"`
	Authentication yaml.Node `yaml:"authentication"`
	RangeQuery     yaml.Node `yaml:"rangeQuery"`
}

// WebMetric fetches a URL and picks a value with a JSONPath.
type WebMetric struct {
	Method         string    `yaml:"method"`
	URL            string    `yaml:"url"`
	Headers        []Header  `yaml:"headers"`
	Body           string    `yaml:"body"`
	JSONBody       yaml.Node `yaml:"jsonBody"`
	TimeoutSeconds int64     `yaml:"timeoutSeconds"`
	JSONPath       string    `yaml:"jsonPath"`
	Insecure       bool      `yaml:"insecure"`
	Authentication yaml.Node `yaml:"authentication"`
}

// Header is one request header.
type Header struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// JobMetric is Argo's Kubernetes Job provider. Without Kubernetes, gantry
// runs the first container's command and args on the host; exit code 0 is
// a successful measurement, any other a failed one. The image is not used.
type JobMetric struct {
	Metadata yaml.Node `yaml:"metadata"`
	Spec     yaml.Node `yaml:"spec"`
}

// GantryMetric reads the live metrics of the load test gantry is running,
// e.g. {metric: http_req_duration, stat: "p(99)"}; durations in ms.
type GantryMetric struct {
	Metric string `yaml:"metric"`
	Stat   string `yaml:"stat"`
}

// ParseTemplates reads every AnalysisTemplate and ClusterAnalysisTemplate
// of a (multi-document) YAML file; other documents (Rollouts, Secrets,
// ...) are skipped. Errors name file:line:col.
func ParseTemplates(file string, data []byte) ([]*Template, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Template
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := root.Decode(&head); err != nil {
			continue
		}
		if head.Kind != "AnalysisTemplate" && head.Kind != "ClusterAnalysisTemplate" {
			continue
		}
		var t Template
		d := &yamlx.Decoder{File: file}
		if err := d.Decode(root, &t); err != nil {
			return nil, err
		}
		if err := t.check(file, root); err != nil {
			return nil, err
		}
		out = append(out, &t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no AnalysisTemplate in the file", file)
	}
	return out, nil
}

// ParseTemplate reads a file that must hold exactly one template, or picks
// the one named name when name is not empty.
func ParseTemplate(file string, data []byte, name string) (*Template, error) {
	ts, err := ParseTemplates(file, data)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if len(ts) > 1 {
			var names []string
			for _, t := range ts {
				names = append(names, t.Metadata.Name)
			}
			return nil, fmt.Errorf("%s holds %d templates (%v); say which", file, len(ts), names)
		}
		return ts[0], nil
	}
	for _, t := range ts {
		if t.Metadata.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%s: no template named %q", file, name)
}

func (t *Template) check(file string, root *yaml.Node) error {
	if len(t.Spec.Metrics) == 0 {
		return yamlx.Errorf(file, root, "template %q has no metrics", t.Metadata.Name)
	}
	seen := map[string]bool{}
	for i, m := range t.Spec.Metrics {
		if m.Name == "" {
			return fmt.Errorf("%s: template %q: metrics[%d] has no name", file, t.Metadata.Name, i)
		}
		if seen[m.Name] {
			return fmt.Errorf("%s: template %q: metric %q defined twice", file, t.Metadata.Name, m.Name)
		}
		seen[m.Name] = true
		if n := m.Provider.count(); n != 1 {
			return fmt.Errorf("%s: template %q: metric %q needs exactly one provider, has %d", file, t.Metadata.Name, m.Name, n)
		}
	}
	return nil
}

func (p *Provider) count() int {
	n := 0
	for _, ok := range []bool{p.Prometheus != nil, p.Web != nil, p.Job != nil, p.Gantry != nil} {
		if ok {
			n++
		}
	}
	for _, node := range p.others() {
		if node.node.Kind != 0 {
			n++
		}
	}
	return n
}

type namedNode struct {
	name string
	node *yaml.Node
}

func (p *Provider) others() []namedNode {
	return []namedNode{
		{"kayenta", &p.Kayenta}, {"datadog", &p.Datadog}, {"wavefront", &p.Wavefront}, {"newRelic", &p.NewRelic},
		{"cloudWatch", &p.CloudWatch}, {"graphite", &p.Graphite}, {"influxdb", &p.Influxdb},
		{"skywalking", &p.SkyWalking}, {"plugin", &p.Plugin},
	}
}
