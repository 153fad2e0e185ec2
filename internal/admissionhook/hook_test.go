package admissionhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/gantry-ci/gantry/internal/admission"
)

// object returns the JSON of a kind holding one container with image.
func object(kind, image string) string {
	pod := fmt.Sprintf(`{"containers":[{"name":"app","image":%q}]}`, image)
	switch kind {
	case "Pod":
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":%s}`, pod)
	case "Rollout":
		return fmt.Sprintf(`{"apiVersion":"argoproj.io/v1alpha1","kind":"Rollout","metadata":{"name":"r"},"spec":{"template":{"spec":%s}}}`, pod)
	case "CronJob":
		return fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"jobTemplate":{"spec":{"template":{"spec":%s}}}}}`, pod)
	}
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":%q,"metadata":{"name":"d"},"spec":{"template":{"spec":%s}}}`, kind, pod)
}

// reviewBody is an AdmissionReview v1 of a CREATE of obj.
func reviewBody(kind, operation, subResource, obj string) []byte {
	group := map[string]string{"Pod": "", "ConfigMap": "", "Job": "batch", "CronJob": "batch", "Rollout": "argoproj.io"}
	g, ok := group[kind]
	if !ok {
		g = "apps"
	}
	req := map[string]any{
		"uid":         "705ab4f5-6393-11e8-b7cc-42010a800002",
		"kind":        map[string]string{"group": g, "version": "v1", "kind": kind},
		"resource":    map[string]string{"group": g, "version": "v1", "resource": strings.ToLower(kind) + "s"},
		"subResource": subResource,
		"namespace":   "default",
		"name":        "x",
		"operation":   operation,
		"userInfo":    map[string]any{"username": "admin"},
		"object":      json.RawMessage(obj),
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		panic(err)
	}
	return b
}

func post(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func TestAnswers(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(newHandler(t, f.policies))
	defer srv.Close()
	srv2 := httptest.NewServer(newHandler(t, admission.Policies{Require: f.policies.Require, EvidenceKey: f.policies.EvidenceKey}))
	defer srv2.Close()
	// A registry that listened once and is gone: the evidence lookup fails.
	stopped := httptest.NewServer(http.NotFoundHandler())
	stoppedAddr := strings.TrimPrefix(stopped.URL, "http://")
	stopped.Close()

	pinned := func(path string) string {
		return fmt.Sprintf(`[{"op":"replace","path":%q,"value":%q}]`, path, f.signed.String())
	}
	tests := []struct {
		name      string
		server    string
		path      string
		kind, op  string
		sub       string
		image     string
		allowed   bool
		code      int32
		patch     string   // want, when allowed
		inMessage []string // when refused
	}{
		{"pod by tag pinned to its digest", srv.URL, PathMutate, "Pod", "CREATE", "", f.signedTag, true, 0, pinned("/spec/containers/0/image"), nil},
		{"deployment template pinned", srv.URL, PathMutate, "Deployment", "CREATE", "", f.signedTag, true, 0, pinned("/spec/template/spec/containers/0/image"), nil},
		{"statefulset template pinned", srv.URL, PathMutate, "StatefulSet", "UPDATE", "", f.signedTag, true, 0, pinned("/spec/template/spec/containers/0/image"), nil},
		{"job template pinned", srv.URL, PathMutate, "Job", "CREATE", "", f.signedTag, true, 0, pinned("/spec/template/spec/containers/0/image"), nil},
		{"rollout template pinned", srv.URL, PathMutate, "Rollout", "CREATE", "", f.signedTag, true, 0, pinned("/spec/template/spec/containers/0/image"), nil},
		{"cronjob template pinned", srv.URL, PathMutate, "CronJob", "CREATE", "", f.signedTag, true, 0, pinned("/spec/jobTemplate/spec/template/spec/containers/0/image"), nil},
		{"validate does not patch", srv.URL, PathValidate, "Pod", "CREATE", "", f.signedTag, true, 0, "", nil},
		{"digest needs no patch", srv.URL, PathMutate, "Pod", "CREATE", "", f.signed.String(), true, 0, "", nil},
		{"unsigned refused", srv.URL, PathMutate, "Pod", "CREATE", "", f.unsigned, false, 403, "", []string{"require-cosign-signature", "unsigned", f.unsigned}},
		{"unsigned deployment refused by validate", srv.URL, PathValidate, "Deployment", "CREATE", "", f.unsigned, false, 403, "", []string{"require-cosign-signature", "unsigned"}},
		{"another registry refused", srv.URL, PathValidate, "Pod", "CREATE", "", f.elsewhereTag, false, 403, "", []string{"restrict-registries", "registry not allowed", "approved registry"}},
		{"failing evidence refused", srv.URL, PathValidate, "Pod", "CREATE", "", f.failing.String(), false, 403, "", []string{"require-evidence", "evidence failing", "tests"}},
		{"unreachable registry fails closed", srv2.URL, PathValidate, "Pod", "CREATE", "", stoppedAddr + "/payments/api:1", false, 503, "", []string{"registry unreachable", "could not decide"}},
		{"unsigned on delete is not checked", srv.URL, PathValidate, "Pod", "DELETE", "", f.unsigned, true, 0, "", nil},
		{"ephemeral containers are checked", srv.URL, PathValidate, "Pod", "UPDATE", "ephemeralcontainers", f.unsigned, false, 403, "", []string{"unsigned"}},
		{"subresource is not checked", srv.URL, PathValidate, "Deployment", "UPDATE", "scale", f.unsigned, true, 0, "", nil},
		{"other kinds pass", srv.URL, PathValidate, "ConfigMap", "CREATE", "", f.unsigned, true, 0, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(tc.kind, tc.image)
			if tc.kind == "ConfigMap" {
				obj = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"image":"` + tc.image + `"}}`
			}
			code, body := post(t, tc.server+tc.path, reviewBody(tc.kind, tc.op, tc.sub, obj))
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", code, body)
			}
			var got admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" || got.Response == nil {
				t.Fatalf("answer %s: want an AdmissionReview v1 with a response", body)
			}
			r := got.Response
			if r.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" {
				t.Errorf("uid %q, want the request's", r.UID)
			}
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %s", r.Allowed, tc.allowed, body)
			}
			if !tc.allowed {
				if r.Result == nil || r.Result.Code != tc.code {
					t.Fatalf("result %+v, want code %d", r.Result, tc.code)
				}
				for _, want := range tc.inMessage {
					if !strings.Contains(r.Result.Message, want) {
						t.Errorf("message %q lacks %q", r.Result.Message, want)
					}
				}
				if r.Patch != nil {
					t.Errorf("a refusal carries a patch: %s", r.Patch)
				}
				return
			}
			if string(r.Patch) != tc.patch {
				t.Errorf("patch %s, want %s", r.Patch, tc.patch)
			}
			if tc.patch != "" && (r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch) {
				t.Errorf("patch type %v, want JSONPatch", r.PatchType)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(newHandler(t, f.policies, WithMaxBody(64<<10)))
	defer srv.Close()
	big := reviewBody("Pod", "CREATE", "", object("Pod", f.signedTag))
	big = bytes.Replace(big, []byte(`"name":"p"`), []byte(`"name":"p","annotations":{"pad":"`+strings.Repeat("x", 70<<10)+`"}`), 1)
	tests := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		code        int
		want        string
	}{
		{"malformed JSON", "POST", "application/json", []byte(`{"apiVersion":`), 400, "decode the AdmissionReview"},
		{"another version", "POST", "application/json", bytes.Replace(reviewBody("Pod", "CREATE", "", object("Pod", f.signedTag)), []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1), 400, "want admission.k8s.io/v1 AdmissionReview"},
		{"no request", "POST", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400, "without a request"},
		{"no uid", "POST", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}`), 400, "without a uid"},
		{"oversized body", "POST", "application/json", big, 413, "over 65536 bytes"},
		{"not JSON", "POST", "text/plain", []byte("hello"), 415, "want application/json"},
		{"GET", "GET", "", nil, 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+PathValidate, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			if !strings.Contains(string(body), tc.want) {
				t.Errorf("body %q lacks %q", body, tc.want)
			}
		})
	}
	t.Run("object without a pod spec", func(t *testing.T) {
		code, body := post(t, srv.URL+PathValidate, reviewBody("Deployment", "CREATE", "", `{"kind":"Deployment","spec":{"replicas":1}}`))
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		var got admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Response.Allowed || got.Response.Result.Code != 400 || !strings.Contains(got.Response.Result.Message, "no /spec/template") {
			t.Errorf("response %+v %+v, want refused 400 naming /spec/template", got.Response, got.Response.Result)
		}
	})
}

func TestRulesApply(t *testing.T) {
	tests := []struct {
		name       string
		kinds      []string
		namespaces []string
		kind, ns   string
		want       bool
	}{
		{"no kinds", nil, nil, "Deployment", "a", true},
		{"pod rule applies to controllers", []string{"Pod"}, nil, "Rollout", "a", true},
		{"group and version", []string{"apps/v1/Deployment"}, nil, "Deployment", "a", true},
		{"deployment rule not to statefulsets", []string{"Deployment"}, nil, "StatefulSet", "a", false},
		{"subresource kind", []string{"Pod/ephemeralcontainers"}, nil, "Pod", "a", true},
		{"wildcard", []string{"*"}, nil, "Job", "a", true},
		{"namespace named", []string{"Pod"}, []string{"prod"}, "Pod", "prod", true},
		{"namespace not named", []string{"Pod"}, []string{"prod"}, "Pod", "dev", false},
		{"namespace pattern", []string{"Pod"}, []string{"prod-*"}, "Pod", "prod-eu", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appliesTo(admission.Rule{Kinds: tc.kinds, Namespaces: tc.namespaces}, tc.kind, tc.ns)
			if got != tc.want {
				t.Errorf("appliesTo(%v, %v, %s, %s) = %v, want %v", tc.kinds, tc.namespaces, tc.kind, tc.ns, got, tc.want)
			}
		})
	}
}

// FuzzServe: whatever the body, the handler answers 200 with a response
// for the request's uid, or a 4xx; it never panics.
func FuzzServe(f *testing.F) {
	pol := []byte(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate:
        pattern:
          spec:
            containers:
              - image: "registry.example/*"
`)
	pols, err := admission.Decode("p.yaml", pol)
	if err != nil {
		f.Fatal(err)
	}
	h := newHandler(f, admission.Policies{Kyverno: pols})
	f.Add(reviewBody("Pod", "CREATE", "", object("Pod", "other.example/app:1")))
	f.Add(reviewBody("Deployment", "UPDATE", "", object("Deployment", "registry.example/app:1")))
	f.Add(reviewBody("CronJob", "CREATE", "", `{"kind":"CronJob","spec":{"jobTemplate":[]}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","kind":{"kind":"Pod"},"object":null}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", PathValidate, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == 200:
			var got admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Response == nil {
				t.Fatalf("200 without a response: %s", rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 500:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
