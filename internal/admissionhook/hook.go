// Package admissionhook serves gantry's admission checks to a Kubernetes
// API server: an AdmissionReview v1 webhook, validating and mutating,
// for Pods and the pod templates of Deployments, StatefulSets, DaemonSets,
// ReplicaSets, Jobs, CronJobs and Argo Rollouts.
//
// The checks are internal/admission's, unchanged: the Kyverno
// ClusterPolicy verifyImages rules and image patterns (the registry
// restriction), and gantry's evidence rule. The mutating endpoint answers
// with the JSON Patch that pins tags to the digests that were verified;
// the validating endpoint checks the object as stored. A registry that
// cannot be reached refuses (fail closed).
package admissionhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/admission"
)

// Paths the Handler serves.
const (
	PathValidate = "/validate"
	PathMutate   = "/mutate"
	PathHealth   = "/healthz"
)

// DefaultMaxBody bounds a request body. The API server sends objects of
// at most 3 MiB (etcd's default request limit is 1.5 MiB); a review of
// such an object with its old object fits.
const DefaultMaxBody = 8 << 20

// Reviewer is what the Handler asks: admission.Reviewer.Review.
type Reviewer interface {
	Review(ctx context.Context, p admission.Policies, pod admission.PodSpec) (admission.Verdict, []admission.Patch)
}

var _ Reviewer = (*admission.Reviewer)(nil)

// Handler answers AdmissionReviews on PathValidate and PathMutate.
type Handler struct {
	reviewer Reviewer
	policies admission.Policies
	log      *slog.Logger
	maxBody  int64
	mux      *http.ServeMux
}

// Option configures a Handler.
type Option func(*Handler) error

// WithLogger sets the logger (default: discard). Each refusal is logged
// with its policy, rule and image.
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) error {
		if l == nil {
			return errors.New("admissionhook: nil logger")
		}
		h.log = l
		return nil
	}
}

// WithMaxBody bounds the request body (default DefaultMaxBody); a larger
// body is answered 413.
func WithMaxBody(n int64) Option {
	return func(h *Handler) error {
		if n <= 0 {
			return fmt.Errorf("admissionhook: max body %d <= 0", n)
		}
		h.maxBody = n
		return nil
	}
}

// New returns a Handler that enforces p with r.
func New(r Reviewer, p admission.Policies, opts ...Option) (*Handler, error) {
	if r == nil {
		return nil, errors.New("admissionhook: nil reviewer")
	}
	if len(p.Kyverno) == 0 && len(p.Require) == 0 {
		return nil, errors.New("admissionhook: no policy and no evidence requirement: the webhook would admit everything")
	}
	h := &Handler{reviewer: r, policies: p, log: slog.New(slog.DiscardHandler), maxBody: DefaultMaxBody}
	for _, o := range opts {
		if err := o(h); err != nil {
			return nil, err
		}
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("POST "+PathValidate, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false) })
	h.mux.HandleFunc("POST "+PathMutate, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true) })
	h.mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// RequestError is a request that is not an AdmissionReview v1 the
// Handler can answer; Status is the HTTP status it answers with.
type RequestError struct {
	Status int
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, mutate bool) {
	review, err := h.read(w, r)
	if err != nil {
		var re *RequestError
		status := http.StatusBadRequest
		if errors.As(err, &re) {
			status = re.Status
		}
		h.log.WarnContext(r.Context(), "bad admission request", "path", r.URL.Path, "error", err)
		http.Error(w, err.Error(), status)
		return
	}
	resp := h.Answer(r.Context(), review.Request, mutate)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	body, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encode the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// read decodes an AdmissionReview v1 with a request.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &RequestError{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("content type %q: want application/json", ct)}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
		}
		return nil, &RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("read the request body: %v", err)}
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, &RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("decode the AdmissionReview: %v", err)}
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, &RequestError{Status: http.StatusBadRequest,
			Msg: fmt.Sprintf("apiVersion %q, kind %q: want %s AdmissionReview", review.APIVersion, review.Kind, admissionv1.SchemeGroupVersion)}
	}
	if review.Request == nil {
		return nil, &RequestError{Status: http.StatusBadRequest, Msg: "AdmissionReview without a request"}
	}
	if review.Request.UID == "" {
		return nil, &RequestError{Status: http.StatusBadRequest, Msg: "AdmissionReview request without a uid"}
	}
	return &review, nil
}

// Answer decides one admission request. With mutate, an allowed answer
// carries the JSON Patch that pins the object's image tags to the
// digests that were verified.
func (h *Handler) Answer(ctx context.Context, req *admissionv1.AdmissionRequest, mutate bool) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return resp
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		// pods/status, deployments/scale, ...: no new image. A Pod's
		// ephemeralcontainers (kubectl debug) add images: checked.
		return resp
	}
	if !slices.Contains(podKinds, req.Kind.Kind) {
		return resp
	}
	if len(req.Object.Raw) == 0 {
		return deny(resp, http.StatusBadRequest, fmt.Sprintf("%s %s/%s: the request carries no object", req.Kind.Kind, req.Namespace, req.Name))
	}
	pod, pointer, err := admission.FromObject(req.Object.Raw)
	if err != nil {
		return deny(resp, http.StatusBadRequest, fmt.Sprintf("%s %s/%s: %v", req.Kind.Kind, req.Namespace, req.Name, err))
	}
	p := h.applying(req.Kind.Kind, req.Namespace)
	verdict, patches := h.reviewer.Review(ctx, p, pod)
	for _, w := range verdict.Warnings {
		resp.Warnings = append(resp.Warnings, warningText(w.String()))
	}
	if !verdict.Allowed {
		code := int32(http.StatusForbidden)
		for _, f := range verdict.Refusals {
			if f.Reason == admission.ReasonUnreachable {
				code = http.StatusServiceUnavailable
			}
			h.log.InfoContext(ctx, "admission refused", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
				"policy", f.Policy, "rule", f.Rule, "image", f.Image, "reason", string(f.Reason))
		}
		return deny(resp, code, fmt.Sprintf("gantry: %s", verdict.Err()))
	}
	if mutate && len(patches) > 0 {
		ops := make([]admission.Patch, len(patches))
		for i, pt := range patches {
			ops[i] = pt
			ops[i].Path = pointer + pt.Path
		}
		body, err := json.Marshal(ops)
		if err != nil {
			return deny(resp, http.StatusInternalServerError, fmt.Sprintf("encode the patch: %v", err))
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = body, &pt
	}
	return resp
}

// podKinds are the kinds whose pod spec the webhook reads.
var podKinds = []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Rollout"}

// applying returns the policies with only the rules that apply to an
// object of kind in namespace: a rule's match kinds name the kind (a rule
// for Pod applies to the pod controllers too, as Kyverno generates their
// rules) and its namespaces, when it names any, match the namespace.
func (h *Handler) applying(kind, namespace string) admission.Policies {
	out := admission.Policies{Require: h.policies.Require, EvidenceKey: h.policies.EvidenceKey}
	for _, pol := range h.policies.Kyverno {
		var rules []admission.Rule
		for _, r := range pol.Rules {
			if appliesTo(r, kind, namespace) {
				rules = append(rules, r)
			}
		}
		if len(rules) == 0 {
			continue
		}
		cp := *pol
		cp.Rules = rules
		out.Kyverno = append(out.Kyverno, &cp)
	}
	return out
}

func appliesTo(r admission.Rule, kind, namespace string) bool {
	if len(r.Namespaces) > 0 && !slices.ContainsFunc(r.Namespaces, func(n string) bool { return admission.Match(n, namespace) }) {
		return false
	}
	if len(r.Kinds) == 0 {
		return true
	}
	for _, k := range r.Kinds {
		k = bareKind(k)
		if admission.Match(k, kind) || k == "Pod" {
			return true
		}
	}
	return false
}

// bareKind returns the kind of a match kind: "apps/v1/Deployment" →
// "Deployment", "Pod/ephemeralcontainers" → "Pod".
func bareKind(k string) string {
	parts := strings.Split(k, "/")
	if len(parts) > 1 {
		if last := parts[len(parts)-1]; last != "" && last != "*" && strings.ToLower(last) == last {
			parts = parts[:len(parts)-1]
		}
	}
	return parts[len(parts)-1]
}

func deny(resp *admissionv1.AdmissionResponse, code int32, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	reason := metav1.StatusReasonForbidden
	switch code {
	case http.StatusBadRequest:
		reason = metav1.StatusReasonBadRequest
	case http.StatusServiceUnavailable:
		reason = metav1.StatusReasonServiceUnavailable
	case http.StatusInternalServerError:
		reason = metav1.StatusReasonInternalError
	}
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
	return resp
}

// warningText makes a warning acceptable to the API server: printable
// characters only, at most 256 of them.
func warningText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 256 {
		s = string(r[:253]) + "..."
	}
	return s
}
