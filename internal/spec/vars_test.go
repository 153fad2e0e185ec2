package spec

import (
	"errors"
	"maps"
	"testing"
)

func TestVarsValidation(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // each error, with its position
	}{
		{
			name: "declared variables in with, env, if and when",
			yaml: `name: demo
vars: {profile: short, target_env: staging}
env: {PROFILE: "${vars.profile}"}
stages:
  - name: build
    when: vars.target_env != ''
    steps:
      - name: a
        uses: echo
        if: vars.profile == 'short'
        with: {message: "${vars.target_env}"}
        env: {TARGET: "${vars.target_env}"}
`,
		},
		{
			name: "unknown variable in with",
			yaml: `name: demo
vars: {profile: short}
stages:
  - name: build
    steps:
      - name: a
        uses: echo
        with: {message: "${vars.profil}"}
`,
			want: []string{`p.yaml:8:25: variable "profil" is not declared in the pipeline's vars: block (declared: profile)`},
		},
		{
			name: "variable without a vars block, in if",
			yaml: `name: demo
stages:
  - name: build
    steps:
      - name: a
        uses: echo
        if: vars.profile == 'x'
`,
			want: []string{`p.yaml:7:13: variable "profile" is not declared: the pipeline has no vars: block`},
		},
		{
			name: "vars read as a whole",
			yaml: `name: demo
vars: {profile: short}
stages:
  - name: build
    when: len(vars) > 0
    steps:
      - {name: a, uses: echo}
`,
			want: []string{`p.yaml:5:11: read a variable by its name (vars.NAME)`},
		},
		{
			name: "bad names",
			yaml: `name: demo
vars:
  Profile: short
  9lives: x
  ok_name: y
stages:
  - name: build
    steps:
      - {name: a, uses: echo}
`,
			want: []string{
				`p.yaml:3:3: variable name "Profile" must match [a-z_][a-z0-9_]*`,
				`p.yaml:4:3: variable name "9lives" must match [a-z_][a-z0-9_]*`,
			},
		},
		{
			name: "a default is not a template",
			yaml: `name: demo
vars:
  tag: "${git.sha}"
stages:
  - name: build
    steps:
      - {name: a, uses: echo}
`,
			want: []string{`p.yaml:3:3: the default of variable "tag" is plain text`},
		},
		{
			name: "never inside run",
			yaml: `name: demo
vars: {profile: short}
stages:
  - name: build
    steps:
      - name: a
        run: echo ${vars.profile}
`,
			want: []string{`p.yaml:7:19: ${vars.profile} in run: would paste a pipeline value into shell code`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.want) == 0 {
				wantNoErrors(t, tt.yaml)
				return
			}
			wantErrors(t, tt.yaml, tt.want...)
		})
	}
}

func TestResolveVars(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`name: demo
vars: {profile: full, region: eu}
stages:
  - name: build
    steps:
      - {name: a, uses: echo, with: {message: "${vars.profile}"}}
`), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		overrides map[string]string
		want      map[string]string
		wantErr   string
	}{
		{name: "defaults", want: map[string]string{"profile": "full", "region": "eu"}},
		{name: "override", overrides: map[string]string{"profile": "short"}, want: map[string]string{"profile": "short", "region": "eu"}},
		{name: "empty value overrides", overrides: map[string]string{"region": ""}, want: map[string]string{"profile": "full", "region": ""}},
		{name: "unknown", overrides: map[string]string{"profil": "short"},
			wantErr: `variable "profil" is not declared in the pipeline's vars: block (it declares profile, region)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveVars(p, tt.overrides)
			if tt.wantErr != "" {
				var uv *UnknownVarError
				if !errors.Is(err, ErrUnknownVar) || !errors.As(err, &uv) || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q (an *UnknownVarError)", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if p.Vars["profile"] != "full" {
				t.Errorf("ResolveVars changed the pipeline's defaults: %v", p.Vars)
			}
		})
	}
}
