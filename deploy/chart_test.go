package deploy

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/manifests"
)

// The value combinations that matter, each rendered, decoded, checked
// against the Kubernetes schemas and by its own assertions.
var combinations = []struct {
	name   string
	values string
	check  func(t *testing.T, o objects)
}{
	{
		name:   "default: PostgreSQL subchart",
		values: ``,
		check: func(t *testing.T, o objects) {
			d := deployment(t, o)
			c := d.Spec.Template.Spec.Containers[0]
			if got, want := env(c, "GANTRY_STORE").Value, "postgres://gantry@ci-postgresql:5432/gantry?sslmode=disable"; got != want {
				t.Errorf("GANTRY_STORE = %q, want %q", got, want)
			}
			if n, k := secretRef(env(c, "PGPASSWORD")); n != "ci-postgresql" || k != "password" {
				t.Errorf("PGPASSWORD from secret %q key %q, want ci-postgresql/password", n, k)
			}
			ss := find[*appsv1.StatefulSet](o, "ci-postgresql")
			if ss == nil {
				t.Fatalf("no StatefulSet ci-postgresql among %v", kinds(o))
			}
			pg := ss.Spec.Template.Spec.Containers[0]
			if n, k := secretRef(env(pg, "POSTGRES_PASSWORD")); n != "ci-postgresql" || k != "password" {
				t.Errorf("POSTGRES_PASSWORD from secret %q key %q, want ci-postgresql/password", n, k)
			}
			if got := pg.Image; !strings.HasPrefix(got, "postgres:") {
				t.Errorf("postgres image = %q, want the official postgres image", got)
			}
			if len(ss.Spec.VolumeClaimTemplates) != 1 {
				t.Errorf("StatefulSet has %d volume claim templates, want 1", len(ss.Spec.VolumeClaimTemplates))
			}
			np := find[*networkingv1.NetworkPolicy](o, "ci-postgresql")
			if np == nil {
				t.Fatal("no NetworkPolicy ci-postgresql")
			}
			if got := np.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/name"]; got != "gantry" {
				t.Errorf("NetworkPolicy admits pods named %q, want gantry", got)
			}
			if s := find[*corev1.Secret](o, "ci-postgresql"); s == nil || len(s.Data["password"]) < 32 {
				t.Errorf("generated PostgreSQL secret = %v, want a password of 32 characters", s)
			}
			if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("strategy %q with a state dir volume, want Recreate", d.Spec.Strategy.Type)
			}
			if pvc := find[*corev1.PersistentVolumeClaim](o, "ci-gantry-state"); pvc == nil {
				t.Errorf("no PersistentVolumeClaim ci-gantry-state among %v", kinds(o))
			} else if got := pvc.Annotations["helm.sh/resource-policy"]; got != "keep" {
				t.Errorf("state claim's resource policy %q, want keep: helm uninstall must not delete the store", got)
			}
			if len(d.Spec.Template.Spec.InitContainers) != 0 {
				t.Errorf("init containers %v without secret files, want none", d.Spec.Template.Spec.InitContainers)
			}
			args := c.Args
			if got, _ := flag(args, "listen"); got != "0.0.0.0:8443" {
				t.Errorf("--listen %q, want 0.0.0.0:8443", got)
			}
			if got, _ := flag(args, "tls-cert"); got != "/etc/gantry/tls/tls.crt" {
				t.Errorf("--tls-cert %q, want the mounted certificate", got)
			}
			tls := find[*corev1.Secret](o, "ci-gantry-tls")
			if tls == nil || tls.Type != corev1.SecretTypeTLS {
				t.Fatalf("TLS secret = %v, want a generated kubernetes.io/tls Secret", tls)
			}
			// The paths gantry serve answers without a login
			// (internal/serve/probes.go).
			for _, p := range []struct {
				name, path string
				probe      *corev1.Probe
			}{{"startup", "/healthz", c.StartupProbe}, {"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
				if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Scheme != corev1.URISchemeHTTPS || p.probe.HTTPGet.Path != p.path {
					t.Errorf("%s probe %v, want an HTTPS GET of %s", p.name, p.probe, p.path)
				}
			}
		},
	},
	{
		name: "external database: URL in values, password from a Secret",
		values: `
postgresql: {enabled: false}
externalDatabase:
  url: postgres://gantry@db.internal:5432/gantry?sslmode=verify-full
  existingSecret: db
  passwordKey: pw
`,
		check: func(t *testing.T, o objects) {
			c := deployment(t, o).Spec.Template.Spec.Containers[0]
			if got, want := env(c, "GANTRY_STORE").Value, "postgres://gantry@db.internal:5432/gantry?sslmode=verify-full"; got != want {
				t.Errorf("GANTRY_STORE = %q, want %q", got, want)
			}
			if n, k := secretRef(env(c, "PGPASSWORD")); n != "db" || k != "pw" {
				t.Errorf("PGPASSWORD from %q/%q, want db/pw", n, k)
			}
			if len(all[*appsv1.StatefulSet](o)) != 0 {
				t.Errorf("a StatefulSet with an external database: %v", kinds(o))
			}
		},
	},
	{
		name: "external database: whole URL from a Secret",
		values: `
postgresql: {enabled: false}
externalDatabase: {existingSecret: db, urlKey: url}
`,
		check: func(t *testing.T, o objects) {
			c := deployment(t, o).Spec.Template.Spec.Containers[0]
			e := env(c, "GANTRY_STORE")
			if n, k := secretRef(e); n != "db" || k != "url" || e.Value != "" {
				t.Errorf("GANTRY_STORE = %+v, want from secret db key url", e)
			}
			p := env(c, "PGPASSWORD")
			if n, k := secretRef(p); n != "db" || k != "password" || p.ValueFrom.SecretKeyRef.Optional == nil || !*p.ValueFrom.SecretKeyRef.Optional {
				t.Errorf("PGPASSWORD = %+v, want an optional ref to db/password", p)
			}
		},
	},
	{
		name:   "SQLite on the state dir's volume, one replica",
		values: `postgresql: {enabled: false}`,
		check: func(t *testing.T, o objects) {
			d := deployment(t, o)
			c := d.Spec.Template.Spec.Containers[0]
			if e := env(c, "GANTRY_STORE"); e != nil {
				t.Errorf("GANTRY_STORE = %+v with SQLite, want none", e)
			}
			if v := volume(d, "state"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "ci-gantry-state" {
				t.Errorf("state volume = %+v, want the claim ci-gantry-state", v)
			}
		},
	},
	{
		name: "three replicas on PostgreSQL, a state dir per pod",
		values: `
replicaCount: 3
persistence: {enabled: false}
`,
		check: func(t *testing.T, o objects) {
			d := deployment(t, o)
			if got := *d.Spec.Replicas; got != 3 {
				t.Errorf("replicas = %d, want 3", got)
			}
			if v := volume(d, "state"); v == nil || v.EmptyDir == nil {
				t.Errorf("state volume = %+v, want an emptyDir", v)
			}
			if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
				t.Errorf("strategy %q, want RollingUpdate", d.Spec.Strategy.Type)
			}
			if len(all[*corev1.PersistentVolumeClaim](o)) != 0 {
				t.Errorf("a PersistentVolumeClaim without persistence: %v", kinds(o))
			}
		},
	},
	{
		name: "webhooks, ssh deploy key, OIDC, an Ingress",
		values: `
server:
  repos: [https://github.com/acme/app.git, "git@github.com:acme/lib.git#trunk"]
  workers: 4
  origins: ["https://ci.example.com", "https://gantry.internal:8443"]
webhooks: {existingSecret: hooks}
git: {ssh: {existingSecret: deploy-key}}
oidc:
  enabled: true
  issuer: https://sso.example.com/realms/eng
  clientId: gantry
  existingSecret: sso
  redirectUrl: https://ci.example.com/auth/oidc/callback
  roleMap: {platform: admin, eng: developer}
  defaultRole: viewer
ingress:
  enabled: true
  className: nginx
  hosts: [{host: ci.example.com}]
  tls: [{secretName: ci-example-com, hosts: [ci.example.com]}]
`,
		check: func(t *testing.T, o objects) {
			d := deployment(t, o)
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]
			for flagName, want := range map[string]string{
				"webhook-secret-file":     "/run/gantry/secrets/webhook-secret",
				"ssh-key":                 "/run/gantry/secrets/ssh-key",
				"ssh-known-hosts":         "/run/gantry/secrets/ssh-known-hosts",
				"oidc-client-secret-file": "/run/gantry/secrets/oidc-client-secret",
				"oidc-issuer":             "https://sso.example.com/realms/eng",
				"oidc-role-map":           "eng=developer,platform=admin",
				"oidc-default-role":       "viewer",
				"workers":                 "4",
			} {
				if got, _ := flag(c.Args, flagName); got != want {
					t.Errorf("--%s %q, want %q", flagName, got, want)
				}
			}
			if got, want := flagValues(c.Args, "repo"), []string{"https://github.com/acme/app.git", "git@github.com:acme/lib.git#trunk"}; !slices.Equal(got, want) {
				t.Errorf("--repo %q, want %q", got, want)
			}
			if got, want := flagValues(c.Args, "origin"), []string{"https://ci.example.com", "https://gantry.internal:8443"}; !slices.Equal(got, want) {
				t.Errorf("--origin %q, want %q", got, want)
			}
			if len(spec.InitContainers) != 1 {
				t.Fatalf("init containers %d, want the one that copies secret files", len(spec.InitContainers))
			}
			in := volume(d, "secrets-in")
			if in == nil || in.Projected == nil {
				t.Fatalf("secrets-in = %+v, want a projected volume", in)
			}
			var sources []string
			for _, s := range in.Projected.Sources {
				for _, it := range s.Secret.Items {
					sources = append(sources, s.Secret.Name+"/"+it.Key+"->"+it.Path)
				}
			}
			want := []string{"hooks/secret->webhook-secret", "sso/client-secret->oidc-client-secret", "deploy-key/ssh-privatekey->ssh-key", "deploy-key/known_hosts->ssh-known-hosts"}
			if !slices.Equal(sources, want) {
				t.Errorf("secret files %q, want %q", sources, want)
			}
			if v := volume(d, "secret-files"); v == nil || v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("secret-files = %+v, want an in-memory emptyDir", v)
			}
			ing := find[*networkingv1.Ingress](o, "ci-gantry")
			if ing == nil {
				t.Fatalf("no Ingress among %v", kinds(o))
			}
			if got := ing.Annotations["nginx.ingress.kubernetes.io/backend-protocol"]; got != "HTTPS" {
				t.Errorf("backend-protocol annotation %q, want HTTPS", got)
			}
			if got := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name; got != "https" {
				t.Errorf("Ingress backend port %q, want https", got)
			}
		},
	},
	{
		name:   "TLS from an existing Secret",
		values: `tls: {existingSecret: ci-cert}`,
		check: func(t *testing.T, o objects) {
			d := deployment(t, o)
			if v := volume(d, "tls"); v == nil || v.Secret == nil || v.Secret.SecretName != "ci-cert" {
				t.Errorf("tls volume = %+v, want the Secret ci-cert", v)
			}
			if s := find[*corev1.Secret](o, "ci-gantry-tls"); s != nil {
				t.Errorf("a generated certificate beside tls.existingSecret")
			}
		},
	},
}

func deployment(t *testing.T, o objects) *appsv1.Deployment {
	t.Helper()
	d := find[*appsv1.Deployment](o, "ci-gantry")
	if d == nil {
		t.Fatalf("no Deployment ci-gantry among %v", kinds(o))
	}
	return d
}

func volume(d *appsv1.Deployment, name string) *corev1.VolumeSource {
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &v.VolumeSource
		}
	}
	return nil
}

func TestRender(t *testing.T) {
	ctx := context.Background()
	reg, err := manifests.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range combinations {
		t.Run(tc.name, func(t *testing.T) {
			manifest, err := render(ctx, t, values(t, tc.values))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			o := decode(t, manifest)
			tc.check(t, o)
			checkHardened(t, o)
			checkNoSecretOutsideSecrets(t, o)
			checkSchemas(ctx, t, reg, manifest)
		})
	}
}

// checkHardened: every container of every workload runs as non-root,
// with a read-only root filesystem, without privilege escalation, with
// resources.
func checkHardened(t *testing.T, o objects) {
	t.Helper()
	var pods []corev1.PodSpec
	for _, d := range all[*appsv1.Deployment](o) {
		pods = append(pods, d.Spec.Template.Spec)
	}
	for _, s := range all[*appsv1.StatefulSet](o) {
		pods = append(pods, s.Spec.Template.Spec)
	}
	for _, p := range pods {
		if p.SecurityContext == nil || p.SecurityContext.RunAsNonRoot == nil || !*p.SecurityContext.RunAsNonRoot {
			t.Errorf("pod security context %+v, want runAsNonRoot", p.SecurityContext)
		}
		for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("container %s: readOnlyRootFilesystem not set", c.Name)
			}
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("container %s: allowPrivilegeEscalation not false", c.Name)
			}
			if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("container %s: capabilities not dropped", c.Name)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("container %s: resources %+v, want memory requests and limits", c.Name, c.Resources)
			}
		}
	}
}

// checkNoSecretOutsideSecrets: no environment variable carries a
// password or URL with one in clear, and the values of the rendered
// Secrets (the generated PostgreSQL password, the TLS key) appear in no
// other object, plain or base64.
func checkNoSecretOutsideSecrets(t *testing.T, o objects) {
	t.Helper()
	var secretValues []string
	for _, s := range all[*corev1.Secret](o) {
		for _, v := range s.Data {
			secretValues = append(secretValues, string(v), base64.StdEncoding.EncodeToString(v))
		}
	}
	for i, obj := range o.objs {
		if _, isSecret := obj.(*corev1.Secret); isSecret {
			continue
		}
		for _, v := range secretValues {
			if strings.Contains(o.docs[i], v) {
				t.Errorf("a Secret's value appears in %T:\n%s", obj, o.docs[i])
			}
		}
	}
	for _, d := range all[*appsv1.Deployment](o) {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if strings.Contains(e.Name, "PASSWORD") && e.Value != "" {
					t.Errorf("container %s: %s in clear", c.Name, e.Name)
				}
				if u, err := url.Parse(e.Value); err == nil && u.User != nil {
					if _, has := u.User.Password(); has {
						t.Errorf("container %s: %s holds a password: %s", c.Name, e.Name, e.Value)
					}
				}
				if strings.Contains(e.Value, "password=") {
					t.Errorf("container %s: %s holds a password parameter: %s", c.Name, e.Name, e.Value)
				}
			}
		}
	}
}

// checkSchemas validates the rendering against the Kubernetes schemas
// offline, as the commit stage validates a chart's rendering.
func checkSchemas(ctx context.Context, t *testing.T, reg *manifests.Registry, manifest string) {
	t.Helper()
	v := &manifests.Validator{Registry: reg}
	r, st, err := v.Check(ctx, t.TempDir(), manifests.Input{Rendered: []manifests.Rendered{{Name: "deploy/gantry (helm template)", Data: []byte(manifest)}}})
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	for _, f := range r.Findings {
		t.Errorf("schema: %s", formatFinding(f))
	}
	if st.Documents == 0 || st.Valid != st.Documents {
		t.Errorf("validated %d of %d documents (%d skipped), want all", st.Valid, st.Documents, st.Skipped)
	}
}

func formatFinding(f findings.Finding) string {
	return f.File + ": " + f.Rule + ": " + f.Message
}

// The combinations the chart refuses, each with what its message says.
func TestRenderRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, values, want string
	}{
		{"SQLite with two replicas", "postgresql: {enabled: false}\nreplicaCount: 2\npersistence: {enabled: false}", "SQLite serves one replica only"},
		{"SQLite without a volume", "postgresql: {enabled: false}\npersistence: {enabled: false}", "run history would be lost"},
		{"two replicas sharing a volume", "replicaCount: 2", "every replica needs a state dir of its own"},
		{"both stores", "externalDatabase: {url: 'postgres://g@db/g'}", "choose one store"},
		{"a password in the URL", "postgresql: {enabled: false}\nexternalDatabase: {url: 'postgres://g:hunter2@db/g'}", "holds a password"},
		{"a password parameter in the URL", "postgresql: {enabled: false}\nexternalDatabase: {url: 'postgres://g@db/g?sslmode=require&password=hunter2'}", "holds a password"},
		{"URL twice", "postgresql: {enabled: false}\nexternalDatabase: {url: 'postgres://g@db/g', existingSecret: db, urlKey: url}", "both set"},
		{"URL key without a Secret", "postgresql: {enabled: false}\nexternalDatabase: {urlKey: url}", "needs externalDatabase.existingSecret"},
		{"webhooks without repositories", "webhooks: {existingSecret: hooks}", "needs server.repos"},
		{"OIDC without an issuer", "oidc: {enabled: true, clientId: g, existingSecret: s, redirectUrl: 'https://ci/auth/oidc/callback'}", "oidc.enabled needs oidc.issuer"},
		{"an Ingress without hosts", "ingress: {enabled: true}", "needs ingress.hosts"},
		{"a misspelt value", "replicas: 2", "replicas"},
		{"no workers", "server: {workers: 0}", "workers"},
		{"a bad duration", "server: {lease: 30 seconds}", "lease"},
		{"an unknown OIDC role", "oidc: {roleMap: {eng: root}}", "roleMap"},
		{"a misspelt subchart value", "postgresql: {auth: {user: x}}", "user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(ctx, t, values(t, tc.values))
			if err == nil {
				t.Fatalf("rendered; want an error saying %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestLint(t *testing.T) {
	for _, tc := range combinations {
		t.Run(tc.name, func(t *testing.T) {
			vals := values(t, tc.values)
			sub, _ := vals["postgresql"].(map[string]any)
			// helm lint --with-subcharts: the chart, then the subchart
			// with its part of the values.
			for _, run := range []struct {
				path string
				vals map[string]any
			}{{chartDir, vals}, {chartDir + "/charts/postgresql", sub}} {
				l := action.NewLint()
				l.Strict = true
				l.Namespace = testNamespace
				res := l.Run([]string{run.path}, run.vals)
				for _, m := range res.Messages {
					if m.Severity > support.InfoSev {
						t.Errorf("helm lint %s: %s", run.path, m.Error())
					}
				}
				for _, err := range res.Errors {
					t.Errorf("helm lint %s: %v", run.path, err)
				}
				if res.TotalChartsLinted != 1 {
					t.Errorf("helm lint %s: linted %d charts, want 1", run.path, res.TotalChartsLinted)
				}
			}
		})
	}
}
