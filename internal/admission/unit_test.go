package admission

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// patternCase is a pattern, a string and whether the one matches the
// other.
type patternCase struct {
	pattern, s string
	want       bool
}

// testPatterns checks the function name match against each case.
func testPatterns(t *testing.T, name string, match func(pattern, s string) bool, tests []patternCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.s, func(t *testing.T) {
			if got := match(tt.pattern, tt.s); got != tt.want {
				t.Errorf("%s(%q, %q) = %v, want %v", name, tt.pattern, tt.s, got, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	testPatterns(t, "Match", Match, []patternCase{
		{"*", "", true},
		{"*", "ghcr.io/a/b:1", true},
		{"ghcr.io/*", "ghcr.io/org/app:1", true},
		{"ghcr.io/*", "docker.io/ghcr.io/x", false},
		{"*.dkr.ecr.*.amazonaws.com/examplepay/*", "123456789012.dkr.ecr.us-east-1.amazonaws.com/examplepay/api@sha256:ab", true},
		{"*.dkr.ecr.*.amazonaws.com/examplepay/*", "123456789012.dkr.ecr.us-east-1.amazonaws.com/other/api", false},
		{"*@sha256:*", "r/app@sha256:00", true},
		{"*@sha256:*", "r/app:1", false},
		{"app:?", "app:1", true},
		{"app:?", "app:12", false},
		{"app:?", "app:", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYcZ", false},
		{"é?", "éü", true},
		{"", "", true},
		{"", "a", false},
		{"**a", "ba", true},
	})
}

// wildcardRegexp is the reference Match is held to.
func wildcardRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func FuzzMatch(f *testing.F) {
	f.Add("*.dkr.ecr.*.amazonaws.com/examplepay/*", "1.dkr.ecr.x.amazonaws.com/examplepay/a")
	f.Add("a*b?c", "aXXbYc")
	f.Add("**?*", "")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) || len(pattern) > 200 || len(s) > 200 {
			return
		}
		if got, want := Match(pattern, s), wildcardRegexp(pattern).MatchString(s); got != want {
			t.Errorf("Match(%q, %q) = %v, the regexp says %v", pattern, s, got, want)
		}
	})
}

func TestValueMatches(t *testing.T) {
	testPatterns(t, "valueMatches", valueMatches, []patternCase{
		{"ghcr.io/* | quay.io/*", "quay.io/a", true},
		{"ghcr.io/* | quay.io/*", "docker.io/a", false},
		{"!*:latest", "app:latest", false},
		{"!*:latest", "app:1", true},
		{"ghcr.io/* & !*:latest", "ghcr.io/a:latest", false},
		{"ghcr.io/* & !*:latest", "ghcr.io/a:1", true},
	})
}

func TestConditions(t *testing.T) {
	predicate := map[string]any{
		"repo":      map[string]any{"uri": "https://github.com/example/pay", "branch": "main"},
		"reviewers": []any{"ana@example.com", "bob@example.com"},
		"score":     float64(8),
		"age":       "90m",
	}
	tests := []struct {
		key      string
		operator string
		value    any
		want     bool
	}{
		{"{{ repo.branch }}", "Equals", "main", true},
		{"{{ repo.branch }}", "Equals", "ma*", true},
		{"{{ repo.branch }}", "NotEquals", "main", false},
		{"{{ repo.uri }}", "Equals", "https://github.com/example/*", true},
		{"{{ score }}", "Equals", "8", true},
		{"{{ score }}", "GreaterThan", float64(7), true},
		{"{{ score }}", "GreaterThanOrEquals", float64(8), true},
		{"{{ score }}", "LessThan", float64(8), false},
		{"{{ score }}", "LessThanOrEquals", "8", true},
		{"{{ age }}", "LessThan", "2h", true},
		{"{{ reviewers }}", "AnyIn", []any{"bob@example.com", "eve@example.com"}, true},
		{"{{ reviewers }}", "AllIn", []any{"bob@example.com", "eve@example.com"}, false},
		{"{{ reviewers }}", "AllIn", []any{"*@example.com"}, true},
		{"{{ reviewers }}", "AnyNotIn", []any{"ana@example.com"}, true},
		{"{{ reviewers }}", "AllNotIn", []any{"eve@example.com"}, true},
		{"{{ repo.branch }}", "In", []any{"main", "release"}, true},
		{"{{ repo.branch }}", "NotIn", []any{"main"}, false},
		{"{{ missing }}", "Equals", "main", false},
		{"https://{{ repo.branch }}", "Equals", "https://main", true},
		{"{{ length(reviewers) }}", "GreaterThanOrEquals", float64(2), true},
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.operator, func(t *testing.T) {
			k, err := compileTemplate(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			c := Condition{Key: k, Operator: tt.operator, Value: tt.value}
			got, err := c.holds(predicate)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s = %v, want %v", c.String(), got, tt.want)
			}
		})
	}
	// Values that cannot be ordered make the condition false with a
	// reason, never true.
	k, _ := compileTemplate("{{ repo }}")
	c := Condition{Key: k, Operator: "GreaterThan", Value: float64(1)}
	if ok, err := c.holds(predicate); ok || err == nil {
		t.Errorf("ordering an object: %v, %v; want false and an error", ok, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	head := `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["*"]
`
	keys := `          attestors:
            - entries:
                - keys:
                    publicKeys: |-
                      -----BEGIN PUBLIC KEY-----
                      MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsuO1J13OgG5C71vn5tOchlg3G3nR
                      2TAicaMTA3NeD7WGlZYKHKFOs5mqD3LCk4aTmDfjB76FoBdmg0lycRy/JQ==
                      -----END PUBLIC KEY-----
`
	tests := []struct {
		name        string
		yaml        string
		where       string // file:line:col
		unsupported bool
		says        string
	}{
		{"keyless", head + "          attestors:\n            - entries:\n                - keyless: {subject: x, issuer: y}\n", "p.yaml:13:19", true, "keyless"},
		{"certificates", head + "          attestors:\n            - entries:\n                - certificates: {cert: x}\n", "p.yaml:13:19", true, "certificate"},
		{"notary", head + "          type: Notary\n" + keys + "                    rekor: {ignoreTlog: true}\n", "p.yaml:11:17", true, "Notary"},
		{"transparency log", head + keys, "p.yaml:14:21", true, "transparency log"},
		{"tlog not ignored", head + keys + "                    rekor: {url: https://rekor.sigstore.dev}\n", "p.yaml:19:28", true, "ignoreTlog"},
		{"k8s key", head + "          attestors:\n            - entries:\n                - keys:\n                    publicKeys: k8s://ns/secret\n                    rekor: {ignoreTlog: true}\n", "p.yaml:14:33", true, "Kubernetes secret"},
		{"secret", head + "          attestors:\n            - entries:\n                - keys:\n                    secret: {name: a, namespace: b}\n                    rekor: {ignoreTlog: true}\n", "p.yaml:14:21", true, "secret"},
		{"sha512", head + keys + "                    signatureAlgorithm: sha512\n                    rekor: {ignoreTlog: true}\n", "p.yaml:19:41", true, "sha512"},
		{"operator", head + keys + "                    rekor: {ignoreTlog: true}\n          attestations:\n            - type: t\n              conditions:\n                - all:\n                    - {key: \"{{ a }}\", operator: DurationGreaterThan, value: 1h}\n", "p.yaml:24:50", true, "DurationGreaterThan"},
		{"kyverno function", head + keys + "                    rekor: {ignoreTlog: true}\n          attestations:\n            - type: t\n              conditions:\n                - all:\n                    - {key: \"{{ request.object.metadata.name }}\", operator: Equals, value: x}\n", "p.yaml:24:29", true, "predicate"},
		{"unknown field", head + keys + "                    rekor: {ignoreTlog: true}\n          mutateDigets: true\n", "p.yaml:20:11", false, `unknown field "mutateDigets"`},
		{"bad key", head + "          attestors:\n            - entries:\n                - keys:\n                    publicKeys: nope\n                    rekor: {ignoreTlog: true}\n", "p.yaml:14:33", false, "PEM"},
		{"not kyverno", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "p.yaml:1:1", false, "kyverno.io"},
		{"syntax", "apiVersion: kyverno.io/v1\nkind: [\n", "p.yaml:", false, ""},
		{"attestation without a key", head + "          attestations:\n            - type: t\n", "p.yaml:10:11", true, "no key"},
		{"bad action", head + keys + "                    rekor: {ignoreTlog: true}\n          validationFailureAction: Deny\n", "p.yaml:20:36", false, `"Deny" is not Enforce or Audit`},
		{"wrong type", head + keys + "                    rekor: {ignoreTlog: true}\n          mutateDigest: yes please\n", "p.yaml:20:25", false, "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("p.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("decoded; want an error")
			}
			if !strings.Contains(err.Error(), tt.where) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q, want it at %s saying %q", err, tt.where, tt.says)
			}
			if got := errors.Is(err, ErrUnsupported); got != tt.unsupported {
				t.Errorf("errors.Is(ErrUnsupported) = %v, want %v (%v)", got, tt.unsupported, err)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *PolicyError", err)
			}
		})
	}
}

func TestMatchKinds(t *testing.T) {
	tests := []struct {
		kind string
		want bool
	}{
		{"Pod", true}, {"v1/Pod", true}, {"*", true}, {"apps/v1/Deployment", true},
		{"StatefulSet", true}, {"CronJob", true}, {"Pod/ephemeralcontainers", true},
		{"Service", false}, {"ConfigMap", false}, {"networking.k8s.io/v1/Ingress", false},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if got := kindSelectsPods(tt.kind); got != tt.want {
				t.Errorf("kindSelectsPods(%q) = %v, want %v", tt.kind, got, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	// Small seeds: with the example files (3 KB) as seeds the fuzzing
	// engine stalls on this machine (a few executions in 30 s, none of
	// them slow in Decode); TestExamplePolicy reads those files.
	f.Add([]byte(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["ghcr.io/*"]
          attestors: [{count: 1, entries: [{keys: {publicKeys: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsuO1J13OgG5C71vn5tOchlg3G3nR\n2TAicaMTA3NeD7WGlZYKHKFOs5mqD3LCk4aTmDfjB76FoBdmg0lycRy/JQ==\n-----END PUBLIC KEY-----", rekor: {ignoreTlog: true}}}]}]
          attestations:
            - type: t
              conditions: [{all: [{key: "{{ a.b }}", operator: AnyIn, value: [x]}]}]
`))
	f.Add([]byte("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec: {rules: [{name: r, match: {resources: {kinds: [Pod]}}, validate: {pattern: {spec: {containers: [{image: '*'}]}}}}]}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := Decode("fuzz.yaml", data)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *PolicyError", err, err)
			}
			return
		}
		if len(ps) == 0 {
			t.Fatal("no policy and no error")
		}
		// A decoded policy can be reviewed offline: a pod whose images
		// match no reference needs no registry.
		for _, p := range ps {
			for _, r := range p.Rules {
				if r.Validate != nil {
					validatePod(r.Validate, PodSpec{Containers: []Container{{Image: "x"}}})
				}
			}
		}
	})
}

func TestDecodeActions(t *testing.T) {
	policy := func(specAction, entryAction string) string {
		s := "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n"
		if specAction != "" {
			s += "  validationFailureAction: " + specAction + "\n"
		}
		s += "  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      verifyImages:\n        - imageReferences: [\"*\"]\n"
		if entryAction != "" {
			s += "          " + entryAction + "\n"
		}
		return s + "          attestors: [{entries: [{keys: {kms: \"awskms:///alias/k\", rekor: {ignoreTlog: true}}}]}]\n"
	}
	tests := []struct {
		name        string
		spec, entry string
		policy, iv  Action
		effective   Action
	}{
		{"Kyverno's default", "", "", Audit, "", Audit},
		{"spec", "enforce", "", Enforce, "", Enforce},
		{"entry's older field", "Enforce", "validationFailureAction: Audit", Enforce, Audit, Audit},
		{"entry", "Audit", "failureAction: Enforce", Audit, Enforce, Enforce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Decode("p.yaml", []byte(policy(tt.spec, tt.entry)))
			if err != nil {
				t.Fatal(err)
			}
			p := ps[0]
			iv := p.Rules[0].VerifyImages[0]
			if p.Action != tt.policy || iv.Action != tt.iv || actionOf(iv.Action, p.Action) != tt.effective {
				t.Errorf("policy %q entry %q effective %q, want %q %q %q", p.Action, iv.Action, actionOf(iv.Action, p.Action), tt.policy, tt.iv, tt.effective)
			}
			if iv.Attestors[0].Entries[0].KMS != "awskms:///alias/k" {
				t.Errorf("attestor %+v, want the KMS key", iv.Attestors[0].Entries[0])
			}
		})
	}
}
