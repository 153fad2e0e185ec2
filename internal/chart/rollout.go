package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	// The Rollout's strategy is decoded into Argo Rollouts' own API
	// types (v1.8.5, the newest release whose module builds with our
	// go 1.26.0 and k8s.io v0.36 without moving either), so that every
	// field and its JSON name are Argo's.
	rollouts "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	yamlv3 "go.yaml.in/yaml/v3"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// Errors of a Rollout's strategy; an *Error names the file and field.
var (
	// ErrInvalidRollout: the Rollout breaks a rule Argo Rollouts enforces
	// (an unknown field, no activeService, the same Service for active
	// and preview, a negative delay).
	ErrInvalidRollout = errors.New("invalid Rollout")
	// ErrAnalysisTemplate: an AnalysisTemplate the Rollout names does not
	// parse.
	ErrAnalysisTemplate = errors.New("AnalysisTemplate does not parse")
)

const argoAPI = "argoproj.io/v1alpha1"

// defaultRevisionHistoryLimit is Argo's spec.revisionHistoryLimit default.
const defaultRevisionHistoryLimit = 10

// rolloutSpec is the part of a Rollout read here; the strategy is decoded
// strictly into Argo's types on its own, so that an unknown field in it
// is reported while the pod template keeps the leniency it has always had
// here.
type rolloutSpec struct {
	Spec struct {
		RevisionHistoryLimit *int32          `json:"revisionHistoryLimit"`
		Strategy             json.RawMessage `json:"strategy"`
	} `json:"spec"`
}

// blueGreen reads the rendered Rollout's strategy.blueGreen and resolves
// the AnalysisTemplates it names among the rendered objects. It returns
// nil when the chart renders no Rollout.
func (x *extractor) blueGreen() (*runtime.BlueGreen, error) {
	var ros []object
	for _, o := range x.objs {
		if o.kind == "Rollout" && o.apiVersion == argoAPI {
			ros = append(ros, o)
		}
	}
	switch len(ros) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, &Error{File: ros[1].file, Field: "Rollout " + ros[1].name, Err: fmt.Errorf("%w: a second Rollout (after %s in %s); an environment rolls out one", ErrUnsupported, ros[0].name, ros[0].file)}
	}
	r := &rolloutReader{o: ros[0], objs: x.objs}
	return r.read()
}

type rolloutReader struct {
	o    object
	objs []object
	bg   *runtime.BlueGreen
	doc  *yamlv3.Node // the Rollout's YAML, for positions; nil if it does not parse
}

// err is an error at a field of the Rollout, with its position in the
// rendered file when the field (or the deepest part of its path) is there.
func (r *rolloutReader) err(field string, err error) error {
	return r.errAt(position(r.doc, field), field, err)
}

func (r *rolloutReader) errAt(n *yamlv3.Node, field string, err error) error {
	e := &Error{File: r.o.file, Field: field, Err: err}
	if n != nil {
		e.Line, e.Column = n.Line+r.o.line-1, n.Column
	}
	return e
}

func (r *rolloutReader) invalid(field, format string, args ...any) error {
	return r.err(field, fmt.Errorf("%w: %s", ErrInvalidRollout, fmt.Sprintf(format, args...)))
}

func (r *rolloutReader) note(field, format string, args ...any) {
	r.bg.Notes = append(r.bg.Notes, r.o.file+": "+field+": "+fmt.Sprintf(format, args...))
}

func (r *rolloutReader) read() (*runtime.BlueGreen, error) {
	var node yamlv3.Node
	if yamlv3.Unmarshal(r.o.raw, &node) == nil {
		r.doc = &node
	}
	var doc rolloutSpec
	if err := yaml.Unmarshal(r.o.raw, &doc); err != nil {
		return nil, r.err("Rollout "+r.o.name, fmt.Errorf("%w: %w", ErrInvalidRollout, err))
	}
	raw := bytes.TrimSpace(doc.Spec.Strategy)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, r.invalid("spec.strategy", "a Rollout needs spec.strategy.blueGreen or spec.strategy.canary")
	}
	// Decoded as Kubernetes decodes it: names match case-sensitively, and
	// (as with kubectl's strict field validation) an unknown field is an
	// error rather than dropped.
	var st rollouts.RolloutStrategy
	strict, err := kjson.UnmarshalStrict(raw, &st)
	if err != nil {
		field := "spec.strategy"
		var te *json.UnmarshalTypeError
		if errors.As(json.Unmarshal(raw, new(rollouts.RolloutStrategy)), &te) && te.Field != "" {
			field += "." + te.Field
			err = fmt.Errorf("got a %s, want %s", te.Value, te.Type)
		}
		return nil, r.err(field, fmt.Errorf("%w: %w", ErrInvalidRollout, err))
	}
	if len(strict) > 0 {
		// The strict errors name the field but not where it is.
		if p, at := unknownField(strategyNode(r.doc), reflect.TypeFor[rollouts.RolloutStrategy](), "spec.strategy"); at != nil {
			return nil, r.errAt(at, p, fmt.Errorf("%w: unknown field (Argo Rollouts defines no %q here)", ErrInvalidRollout, at.Value))
		}
		return nil, r.err("spec.strategy", fmt.Errorf("%w: %w", ErrInvalidRollout, errors.Join(strict...)))
	}
	switch {
	case st.BlueGreen != nil && st.Canary != nil:
		return nil, r.invalid("spec.strategy", "blueGreen and canary are both set; a Rollout has one strategy")
	case st.Canary != nil:
		return nil, r.err("spec.strategy.canary", ErrUnsupported)
	case st.BlueGreen == nil:
		return nil, r.invalid("spec.strategy", "a Rollout needs spec.strategy.blueGreen or spec.strategy.canary")
	}
	return r.strategy(st.BlueGreen, doc.Spec.RevisionHistoryLimit)
}

const bgField = "spec.strategy.blueGreen"

func (r *rolloutReader) strategy(s *rollouts.BlueGreenStrategy, historyLimit *int32) (*runtime.BlueGreen, error) {
	r.bg = &runtime.BlueGreen{
		ActiveService:        s.ActiveService,
		PreviewService:       s.PreviewService,
		AutoPromotionEnabled: s.AutoPromotionEnabled == nil || *s.AutoPromotionEnabled,
		AutoPromotionSeconds: int(s.AutoPromotionSeconds),
	}
	if s.ActiveService == "" {
		return nil, r.invalid(bgField+".activeService", "required")
	}
	if s.ActiveService == s.PreviewService {
		return nil, r.invalid(bgField+".previewService", "%q is also the activeService; Argo needs two different Services", s.PreviewService)
	}
	for _, svc := range []struct{ field, name string }{{"activeService", s.ActiveService}, {"previewService", s.PreviewService}} {
		if svc.name == "" || r.find("Service", "v1", svc.name) != nil {
			continue
		}
		return nil, r.err(bgField+"."+svc.field, fmt.Errorf("%w: Service %q (the chart renders %s)", ErrReference, svc.name, r.have("Service", "v1")))
	}
	ints := []struct {
		field string
		v     *int32
		out   **int
	}{
		{"previewReplicaCount", s.PreviewReplicaCount, &r.bg.PreviewReplicaCount},
		{"scaleDownDelaySeconds", s.ScaleDownDelaySeconds, &r.bg.ScaleDownDelaySeconds},
		{"abortScaleDownDelaySeconds", s.AbortScaleDownDelaySeconds, &r.bg.AbortScaleDownDelaySeconds},
		{"scaleDownDelayRevisionLimit", s.ScaleDownDelayRevisionLimit, &r.bg.ScaleDownDelayRevisionLimit},
		{"autoPromotionSeconds", &s.AutoPromotionSeconds, nil},
	}
	for _, f := range ints {
		if f.v == nil {
			continue
		}
		if *f.v < 0 {
			return nil, r.invalid(bgField+"."+f.field, "%d is negative", *f.v)
		}
		if f.out != nil {
			n := int(*f.v)
			*f.out = &n
		}
	}
	if s.ScaleDownDelayRevisionLimit != nil {
		limit := int32(defaultRevisionHistoryLimit)
		if historyLimit != nil {
			limit = *historyLimit
		}
		if *s.ScaleDownDelayRevisionLimit > limit {
			return nil, r.invalid(bgField+".scaleDownDelayRevisionLimit", "%d is above spec.revisionHistoryLimit %d", *s.ScaleDownDelayRevisionLimit, limit)
		}
	}
	if s.AntiAffinity != nil {
		r.note(bgField+".antiAffinity", "ignored on one machine (every instance runs on this host)")
	}
	if s.MaxUnavailable != nil {
		r.note(bgField+".maxUnavailable", "ignored: green starts beside blue, and blue keeps serving until the switch")
	}
	if s.PreviewMetadata != nil {
		r.note(bgField+".previewMetadata", "ignored: the local runtime's instances carry no labels or annotations")
	}
	if s.ActiveMetadata != nil {
		r.note(bgField+".activeMetadata", "ignored: the local runtime's instances carry no labels or annotations")
	}
	var err error
	if r.bg.PrePromotionAnalysis, err = r.analysis(bgField+".prePromotionAnalysis", s.PrePromotionAnalysis); err != nil {
		return nil, err
	}
	if r.bg.PostPromotionAnalysis, err = r.analysis(bgField+".postPromotionAnalysis", s.PostPromotionAnalysis); err != nil {
		return nil, err
	}
	return r.bg, nil
}

// analysis resolves one RolloutAnalysis: its templates parsed from the
// rendered objects (each reference parsed afresh, so that pre- and
// post-promotion analyses never share a template), its arguments checked
// against what the templates declare.
func (r *rolloutReader) analysis(field string, a *rollouts.RolloutAnalysis) (*runtime.RolloutAnalysis, error) {
	if a == nil {
		return nil, nil
	}
	if len(a.Templates) == 0 {
		return nil, r.invalid(field+".templates", "names no AnalysisTemplate")
	}
	out := &runtime.RolloutAnalysis{}
	given := map[string]bool{}
	for i, arg := range a.Args {
		f := fmt.Sprintf("%s.args[%d]", field, i)
		switch {
		case arg.Name == "":
			return nil, r.invalid(f+".name", "required")
		case given[arg.Name]:
			return nil, r.invalid(f+".name", "argument %q is given twice", arg.Name)
		case arg.ValueFrom != nil && arg.ValueFrom.PodTemplateHashValue != nil:
			return nil, r.err(f+".valueFrom.podTemplateHashValue", fmt.Errorf("%w: the local runtime has no ReplicaSets, so no %s pod-template-hash; give a value", ErrUnsupported, *arg.ValueFrom.PodTemplateHashValue))
		case arg.ValueFrom != nil && arg.ValueFrom.FieldRef != nil:
			return nil, r.err(f+".valueFrom.fieldRef", fmt.Errorf("%w: fieldRef %q; give a value", ErrUnsupported, arg.ValueFrom.FieldRef.FieldPath))
		case arg.ValueFrom != nil:
			return nil, r.err(f+".valueFrom", fmt.Errorf("%w: an empty valueFrom; give a value", ErrUnsupported))
		}
		given[arg.Name] = true
		out.Args = append(out.Args, runtime.AnalysisArg{Name: arg.Name, Value: arg.Value})
	}
	var dry []analysis.MetricRef
	for _, d := range a.DryRun {
		dry = append(dry, analysis.MetricRef{MetricName: d.MetricName})
	}
	declared := map[string]bool{}
	for i, ref := range a.Templates {
		f := fmt.Sprintf("%s.templates[%d]", field, i)
		t, err := r.template(f, ref)
		if err != nil {
			return nil, err
		}
		for _, arg := range t.Spec.Args {
			declared[arg.Name] = true
			if arg.Value == nil && arg.ValueFrom == nil && !given[arg.Name] {
				return nil, r.err(field+".args", fmt.Errorf("argument %q of %s %q %w: the template gives none, and neither does the Rollout", arg.Name, t.Kind, t.Metadata.Name, analysis.ErrArgNoValue))
			}
		}
		// The Rollout's dryRun applies to every template's metrics, as
		// Argo merges it into the AnalysisRun.
		t.Spec.DryRun = append(t.Spec.DryRun, dry...)
		out.Templates = append(out.Templates, t)
	}
	for i, arg := range a.Args {
		if !declared[arg.Name] {
			r.note(fmt.Sprintf("%s.args[%d]", field, i), "no template declares argument %q; ignored, as Argo does", arg.Name)
		}
	}
	if len(a.MeasurementRetention) > 0 {
		r.note(field+".measurementRetention", "ignored: gantry keeps every measurement of a run")
	}
	if len(a.AnalysisRunMetadata.Labels)+len(a.AnalysisRunMetadata.Annotations) > 0 {
		r.note(field+".analysisRunMetadata", "ignored: the local runtime records analysis runs without labels or annotations")
	}
	return out, nil
}

// template finds and parses the AnalysisTemplate (ClusterAnalysisTemplate
// with clusterScope) a Rollout names.
func (r *rolloutReader) template(field string, ref rollouts.AnalysisTemplateRef) (*analysis.Template, error) {
	if ref.TemplateName == "" {
		return nil, r.invalid(field+".templateName", "required")
	}
	kind := "AnalysisTemplate"
	if ref.ClusterScope {
		kind = "ClusterAnalysisTemplate"
	}
	o := r.find(kind, argoAPI, ref.TemplateName)
	if o == nil {
		msg := fmt.Sprintf("%s %q (the chart renders %s)", kind, ref.TemplateName, r.have(kind, argoAPI))
		if ref.ClusterScope {
			msg += "; clusterScope: true names a template installed in the cluster, and the local runtime has no cluster: render the ClusterAnalysisTemplate in the chart"
		}
		return nil, r.err(field+".templateName", fmt.Errorf("%w: %s", ErrReference, msg))
	}
	// Padded so that the parser's line numbers are the rendered file's.
	src := append(bytes.Repeat([]byte("\n"), max(o.line-1, 0)), o.raw...)
	ts, err := analysis.ParseTemplates(o.file, src)
	if err != nil {
		return nil, r.err(field+".templateName", fmt.Errorf("%w: %s %q: %w", ErrAnalysisTemplate, kind, ref.TemplateName, err))
	}
	return ts[0], nil
}

// find returns the first rendered object of that kind and name.
func (r *rolloutReader) find(kind, apiVersion, name string) *object {
	for i, o := range r.objs {
		if o.kind == kind && o.apiVersion == apiVersion && o.name == name {
			return &r.objs[i]
		}
	}
	return nil
}

// have lists the names of the rendered objects of a kind, for an error.
func (r *rolloutReader) have(kind, apiVersion string) string {
	var names []string
	for _, o := range r.objs {
		if o.kind == kind && o.apiVersion == apiVersion {
			names = append(names, o.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// strategyNode is the value of spec.strategy in the Rollout's YAML.
func strategyNode(doc *yamlv3.Node) *yamlv3.Node {
	if doc == nil || doc.Kind != yamlv3.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	_, spec := child(doc.Content[0], "spec")
	if spec == nil {
		return nil
	}
	_, st := child(spec, "strategy")
	return st
}
