package chart

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// object is one rendered Kubernetes object and the template it came from.
type object struct {
	file       string // repository path of the template
	apiVersion string
	kind       string
	name       string
	raw        []byte
	line       int // where the document starts in the rendered file
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// decodeManifests splits the rendered templates into objects, in the order
// of their file names and, inside a file, of the documents.
func decodeManifests(out map[string]string, chartName, chartDir string) ([]object, map[string]string, error) {
	manifests := map[string]string{}
	var objs []object
	for _, key := range slices.Sorted(mapKeys(out)) {
		ext := path.Ext(key)
		if ext != ".yaml" && ext != ".yml" && ext != ".json" {
			continue
		}
		if strings.HasPrefix(path.Base(key), "_") {
			continue
		}
		file := chartDir + "/" + strings.TrimPrefix(key, chartName+"/")
		text := out[key]
		if strings.TrimSpace(text) == "" {
			continue
		}
		manifests[file] = text
		docs := docSeparator.Split(text, -1)
		starts := docSeparator.FindAllStringIndex(text, -1)
		for i, doc := range docs {
			line := 1
			if i > 0 {
				// The document starts on the line after its separator.
				line = strings.Count(text[:starts[i-1][1]], "\n") + 1
			}
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var h header
			if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
				return nil, nil, &Error{File: file, Field: fmt.Sprintf("document %d", i+1), Err: fmt.Errorf("%w: rendered YAML does not parse: %w", ErrRender, err)}
			}
			if h.Kind == "" {
				continue
			}
			objs = append(objs, object{file: file, apiVersion: h.APIVersion, kind: h.Kind, name: h.Metadata.Name, raw: []byte(doc), line: line})
		}
	}
	return objs, manifests, nil
}

// podWorkload is a Deployment, StatefulSet or Rollout, reduced to what the
// local runtime needs.
type podWorkload struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Replicas    *int32                 `json:"replicas"`
		Template    corev1.PodTemplateSpec `json:"template"`
		WorkloadRef *struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"workloadRef"`
	} `json:"spec"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicas *int32 `json:"minReplicas"`
	} `json:"spec"`
}

// workloadKinds are the objects whose pod template is run.
var workloadKinds = map[string]string{
	"Deployment":  "apps/v1",
	"StatefulSet": "apps/v1",
	"Rollout":     "argoproj.io/v1alpha1",
}

type extractor struct {
	objs    []object
	pin     *name.Digest
	ns      string
	portEnv string

	configMaps map[string]map[string]string
	secrets    map[string]map[string]string
	hpas       []hpa
	workloads  []runtime.Workload
	notes      []string
}

func (x *extractor) note(format string, args ...any) {
	x.notes = append(x.notes, fmt.Sprintf(format, args...))
}

func (x *extractor) run() error {
	x.configMaps, x.secrets = map[string]map[string]string{}, map[string]map[string]string{}
	for _, o := range x.objs {
		switch {
		case o.kind == "ConfigMap" && o.apiVersion == "v1":
			var cm corev1.ConfigMap
			if err := yaml.Unmarshal(o.raw, &cm); err != nil {
				return &Error{File: o.file, Field: "ConfigMap " + o.name, Err: fmt.Errorf("%w: %w", ErrRender, err)}
			}
			data := map[string]string{}
			for k, v := range cm.Data {
				data[k] = v
			}
			x.configMaps[cm.Name] = data
		case o.kind == "Secret" && o.apiVersion == "v1":
			var s corev1.Secret
			if err := yaml.Unmarshal(o.raw, &s); err != nil {
				return &Error{File: o.file, Field: "Secret " + o.name, Err: fmt.Errorf("%w: %w", ErrRender, err)}
			}
			data := map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
			for k, v := range s.StringData {
				data[k] = v
			}
			x.secrets[s.Name] = data
		case o.kind == "HorizontalPodAutoscaler" && strings.HasPrefix(o.apiVersion, "autoscaling/"):
			var h hpa
			if err := yaml.Unmarshal(o.raw, &h); err != nil {
				return &Error{File: o.file, Field: "HorizontalPodAutoscaler " + o.name, Err: fmt.Errorf("%w: %w", ErrRender, err)}
			}
			x.hpas = append(x.hpas, h)
		}
	}
	found := false
	for _, o := range x.objs {
		if api, ok := workloadKinds[o.kind]; !ok || api != o.apiVersion {
			continue
		}
		found = true
		if err := x.workload(o); err != nil {
			return err
		}
	}
	if !found {
		files := []string{}
		for _, o := range x.objs {
			files = append(files, o.kind+" "+o.name)
		}
		have := "it renders nothing"
		if len(files) > 0 {
			have = "it renders " + strings.Join(files, ", ")
		}
		return fmt.Errorf("%w: the local runtime runs the pod template of an apps/v1 Deployment or StatefulSet or an argoproj.io/v1alpha1 Rollout; %s", ErrNoWorkload, have)
	}
	return nil
}

func (x *extractor) workload(o object) error {
	var w podWorkload
	if err := yaml.Unmarshal(o.raw, &w); err != nil {
		return &Error{File: o.file, Field: o.kind + " " + o.name, Err: fmt.Errorf("%w: %w", ErrRender, err)}
	}
	if ref := w.Spec.WorkloadRef; ref != nil {
		return &Error{File: o.file, Field: "spec.workloadRef", Err: fmt.Errorf("%w: a Rollout that refers to %s %s; put the pod template in the Rollout", ErrUnsupported, ref.Kind, ref.Name)}
	}
	replicas := 1
	switch {
	case w.Spec.Replicas != nil:
		replicas = int(*w.Spec.Replicas)
	default:
		for _, h := range x.hpas {
			if h.Spec.ScaleTargetRef.Kind == o.kind && h.Spec.ScaleTargetRef.Name == o.name && h.Spec.MinReplicas != nil {
				replicas = int(*h.Spec.MinReplicas)
			}
		}
	}
	pod := w.Spec.Template
	spec := pod.Spec
	base := "spec.template.spec"
	if len(spec.Containers) == 0 {
		return &Error{File: o.file, Field: base + ".containers", Err: fmt.Errorf("%w: %s %s has no containers", ErrNoWorkload, o.kind, o.name)}
	}
	type entry struct {
		c     corev1.Container
		field string
	}
	var list []entry
	for i, c := range spec.InitContainers {
		field := fmt.Sprintf("%s.initContainers[%d]", base, i)
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			return &Error{File: o.file, Field: field, Err: fmt.Errorf("%w: init container %q (run its work in the application's start-up, or make it a sidecar with restartPolicy: Always)", ErrUnsupported, c.Name)}
		}
	}
	for i, c := range spec.Containers {
		list = append(list, entry{c, fmt.Sprintf("%s.containers[%d]", base, i)})
	}
	for i, c := range spec.InitContainers {
		list = append(list, entry{c, fmt.Sprintf("%s.initContainers[%d]", base, i)})
	}
	grace := 30 * time.Second
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	for i, e := range list {
		wl, err := x.container(o, &pod, e.c, e.field, i == 0)
		if err != nil {
			return err
		}
		wl.Replicas = replicas
		wl.TerminationGrace = grace
		wl.PortEnv = x.portEnv
		if slices.ContainsFunc(x.workloads, func(other runtime.Workload) bool { return other.Name == wl.Name }) {
			wl.Name = o.name + "-" + wl.Name
		}
		x.workloads = append(x.workloads, wl)
	}
	return nil
}

func (x *extractor) container(o object, pod *corev1.PodTemplateSpec, c corev1.Container, field string, app bool) (runtime.Workload, error) {
	wl := runtime.Workload{Name: c.Name, Command: c.Command, Args: c.Args, WorkingDir: c.WorkingDir}
	if c.Image == "" {
		return wl, &Error{File: o.file, Field: field + ".image", Err: fmt.Errorf("%w: container %q", ErrNoImage, c.Name)}
	}
	img, err := x.image(c.Image, app)
	if err != nil {
		return wl, &Error{File: o.file, Field: field + ".image", Err: err}
	}
	wl.Image = img
	for _, p := range c.Ports {
		wl.Ports = append(wl.Ports, runtime.Port{Name: p.Name, ContainerPort: int(p.ContainerPort)})
	}
	if wl.Env, err = x.env(o, pod, c, field); err != nil {
		return wl, err
	}
	if wl.Readiness, err = probe(c.ReadinessProbe, c.Ports); err != nil {
		return wl, &Error{File: o.file, Field: field + ".readinessProbe", Err: err}
	}
	if wl.Liveness, err = probe(c.LivenessProbe, c.Ports); err != nil {
		return wl, &Error{File: o.file, Field: field + ".livenessProbe", Err: err}
	}
	if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		wl.Resources.MemoryLimit = m.Value()
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		wl.Resources.CPUMillis = cpu.MilliValue()
	}
	wl.Security = security(pod.Spec.SecurityContext, c.SecurityContext)
	return wl, nil
}

// image applies the pinning rule (see the package doc).
func (x *extractor) image(ref string, app bool) (string, error) {
	if x.pin != nil {
		if app {
			return x.pin.String(), nil
		}
		if r, err := name.ParseReference(ref); err == nil && r.Context().Name() == x.pin.Context().Name() {
			return x.pin.String(), nil
		}
	}
	if _, err := name.NewDigest(ref); err != nil {
		return "", fmt.Errorf("%w: %q: the local runtime runs images by digest only; name it REPO@sha256:<hex>", ErrNotPinned, ref)
	}
	return ref, nil
}

// env resolves envFrom, then env, as Kubernetes applies them: a later
// value of a name replaces an earlier one.
func (x *extractor) env(o object, pod *corev1.PodTemplateSpec, c corev1.Container, field string) ([]string, error) {
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	for i, ef := range c.EnvFrom {
		f := fmt.Sprintf("%s.envFrom[%d]", field, i)
		switch {
		case ef.ConfigMapRef != nil:
			data, ok := x.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				if ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
					x.note("%s: %s: optional ConfigMap %q is not in the chart; skipped", o.file, f, ef.ConfigMapRef.Name)
					continue
				}
				return nil, &Error{File: o.file, Field: f + ".configMapRef", Err: fmt.Errorf("%w: ConfigMap %q", ErrReference, ef.ConfigMapRef.Name)}
			}
			for _, k := range slices.Sorted(mapKeys(data)) {
				set(ef.Prefix+k, data[k])
			}
		case ef.SecretRef != nil:
			data, ok := x.secrets[ef.SecretRef.Name]
			if !ok {
				x.note("%s: %s: Secret %q is not in the chart; skipped (the environment's services provide the connection settings)", o.file, f+".secretRef", ef.SecretRef.Name)
				continue
			}
			for _, k := range slices.Sorted(mapKeys(data)) {
				set(ef.Prefix+k, data[k])
			}
		}
	}
	for i, e := range c.Env {
		f := fmt.Sprintf("%s.env[%d]", field, i)
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vals))
			continue
		}
		v, ok, err := x.valueFrom(o, pod, c, e, f)
		if err != nil {
			return nil, err
		}
		if ok {
			set(e.Name, v)
		}
	}
	var out []string
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// valueFrom resolves one env valueFrom; ok is false when it is skipped.
func (x *extractor) valueFrom(o object, pod *corev1.PodTemplateSpec, c corev1.Container, e corev1.EnvVar, f string) (string, bool, error) {
	src := e.ValueFrom
	switch {
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		data, ok := x.configMaps[ref.Name]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, &Error{File: o.file, Field: f + ".valueFrom.configMapKeyRef", Err: fmt.Errorf("%w: ConfigMap %q", ErrReference, ref.Name)}
		}
		v, ok := data[ref.Key]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, &Error{File: o.file, Field: f + ".valueFrom.configMapKeyRef", Err: fmt.Errorf("%w: ConfigMap %q has no key %q", ErrReference, ref.Name, ref.Key)}
		}
		return v, true, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		data, ok := x.secrets[ref.Name]
		if !ok {
			x.note("%s: %s (%s): Secret %q is not in the chart; skipped (the environment's services provide the connection settings)", o.file, f, e.Name, ref.Name)
			return "", false, nil
		}
		v, ok := data[ref.Key]
		if !ok {
			x.note("%s: %s (%s): Secret %q has no key %q; skipped", o.file, f, e.Name, ref.Name, ref.Key)
			return "", false, nil
		}
		return v, true, nil
	case src.FieldRef != nil:
		v, ok := x.fieldRef(o, pod, src.FieldRef.FieldPath)
		if !ok {
			x.note("%s: %s (%s): fieldRef %s has no value on the local runtime; skipped", o.file, f, e.Name, src.FieldRef.FieldPath)
		}
		return v, ok, nil
	case src.ResourceFieldRef != nil:
		v, ok := resourceField(c, src.ResourceFieldRef)
		if !ok {
			x.note("%s: %s (%s): resourceFieldRef %s is not set; skipped", o.file, f, e.Name, src.ResourceFieldRef.Resource)
		}
		return v, ok, nil
	}
	x.note("%s: %s (%s): this valueFrom is not supported on the local runtime; skipped", o.file, f, e.Name)
	return "", false, nil
}

var labelRef = regexp.MustCompile(`^metadata\.(labels|annotations)\['([^']+)'\]$`)

// fieldRef gives the downward API's fields their local values: instances
// run on this host, on loopback.
func (x *extractor) fieldRef(o object, pod *corev1.PodTemplateSpec, p string) (string, bool) {
	switch p {
	case "metadata.name":
		return o.name, true
	case "metadata.namespace":
		return x.ns, true
	case "status.podIP", "status.hostIP", "status.podIPs", "status.hostIPs":
		return "127.0.0.1", true
	case "spec.nodeName":
		return "localhost", true
	case "spec.serviceAccountName":
		if pod.Spec.ServiceAccountName != "" {
			return pod.Spec.ServiceAccountName, true
		}
		return "default", true
	}
	if m := labelRef.FindStringSubmatch(p); m != nil {
		src := pod.Labels
		if m[1] == "annotations" {
			src = pod.Annotations
		}
		v, ok := src[m[2]]
		return v, ok
	}
	return "", false
}

func resourceField(c corev1.Container, r *corev1.ResourceFieldSelector) (string, bool) {
	kind, res, ok := strings.Cut(r.Resource, ".")
	if !ok {
		return "", false
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(res)]
	if !ok {
		return "", false
	}
	div := r.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if res == "cpu" {
		n := (q.MilliValue() + div.MilliValue() - 1) / div.MilliValue()
		return strconv.FormatInt(n, 10), true
	}
	n := (q.Value() + div.Value() - 1) / div.Value()
	return strconv.FormatInt(n, 10), true
}

// expand replaces $(NAME) by the value defined before, as Kubernetes
// does; $$ is a literal $, and an unknown $(NAME) stays as written.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func probe(p *corev1.Probe, ports []corev1.ContainerPort) (*runtime.Probe, error) {
	if p == nil {
		return nil, nil
	}
	out := &runtime.Probe{
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           seconds(p.PeriodSeconds, 10),
		Timeout:          seconds(p.TimeoutSeconds, 1),
		SuccessThreshold: orDefault(p.SuccessThreshold, 1),
		FailureThreshold: orDefault(p.FailureThreshold, 3),
	}
	switch {
	case p.HTTPGet != nil:
		port, err := probePort(p.HTTPGet.Port, ports, "httpGet.port")
		if err != nil {
			return nil, err
		}
		pth := p.HTTPGet.Path
		if pth == "" {
			pth = "/"
		}
		out.HTTPGet = &runtime.HTTPGetAction{Path: pth, Port: port, Scheme: string(p.HTTPGet.Scheme)}
	case p.TCPSocket != nil:
		port, err := probePort(p.TCPSocket.Port, ports, "tcpSocket.port")
		if err != nil {
			return nil, err
		}
		out.TCPPort = port
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return nil, fmt.Errorf("exec probe without a command")
		}
		out.Exec = p.Exec.Command
	case p.GRPC != nil:
		return nil, fmt.Errorf("grpc: %w", ErrUnsupported)
	default:
		return nil, fmt.Errorf("probe has no httpGet, tcpSocket or exec")
	}
	return out, nil
}

func probePort(p intstr.IntOrString, ports []corev1.ContainerPort, field string) (string, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return "", fmt.Errorf("%s: %d is not a port number", field, p.IntVal)
		}
		return strconv.Itoa(int(p.IntVal)), nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return p.StrVal, nil
	}
	var names []string
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return p.StrVal, nil
		}
		if cp.Name != "" {
			names = append(names, cp.Name)
		}
	}
	have := "the container names no ports"
	if len(names) > 0 {
		have = "the container's ports are " + strings.Join(names, ", ")
	}
	return "", fmt.Errorf("%s: %w %q (%s)", field, ErrUnknownPort, p.StrVal, have)
}

func seconds(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

func orDefault(v, def int32) int {
	if v <= 0 {
		return int(def)
	}
	return int(v)
}

// security merges the pod's security context with the container's, the
// container winning.
func security(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) runtime.Security {
	var s runtime.Security
	if pod != nil {
		s.RunAsUser, s.RunAsGroup = pod.RunAsUser, pod.RunAsGroup
		if pod.RunAsNonRoot != nil {
			s.RunAsNonRoot = *pod.RunAsNonRoot
		}
	}
	if c != nil {
		if c.RunAsUser != nil {
			s.RunAsUser = c.RunAsUser
		}
		if c.RunAsGroup != nil {
			s.RunAsGroup = c.RunAsGroup
		}
		if c.RunAsNonRoot != nil {
			s.RunAsNonRoot = *c.RunAsNonRoot
		}
		if c.ReadOnlyRootFilesystem != nil {
			s.ReadOnlyRootFilesystem = *c.ReadOnlyRootFilesystem
		}
		s.AllowPrivilegeEscalation = c.AllowPrivilegeEscalation
	}
	return s
}
