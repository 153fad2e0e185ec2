package backend

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const block = `terraform {
  required_version = ">= 1.5"
  backend "s3" {
    bucket                      = "examplepay-tfstate"
    key                         = "payment/terraform.tfstate"
    region                      = "eu-west-1"
    dynamodb_table              = "tf-locks"
    encrypt                     = true
    skip_credentials_validation = true
  }
}
resource "terraform_data" "a" {}
`

func TestLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.tf":  block,
		"other.tf": `variable "x" {}`,
		"dev.s3.tfbackend": `
endpoint       = "http://127.0.0.1:7070"
force_path_style = true
workspace_key_prefix = "ws"
`,
	})
	c, err := Load(dir, []string{filepath.Join(dir, "dev.s3.tfbackend"), "bucket=override", "use_lockfile=true"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Bucket: "override", Key: "payment/terraform.tfstate", Region: "eu-west-1",
		Endpoint: "http://127.0.0.1:7070", WorkspaceKeyPrefix: "ws", UsePathStyle: true,
		DynamoDBTable: "tf-locks", UseLockfile: true, Encrypt: true,
	}
	if *c != want {
		t.Errorf("Load = %+v\nwant %+v", *c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestNewStyleEndpoints(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.tf": `terraform {
  backend "s3" {
    bucket = "b"
    key    = "k"
    use_path_style = true
    endpoints = {
      s3       = "http://s3.local"
      dynamodb = "http://ddb.local"
      sts      = "http://sts.local"
    }
  }
}`})
	c, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "http://s3.local" || c.DynamoDBEndpoint != "http://ddb.local" || !c.UsePathStyle {
		t.Errorf("Load = %+v", *c)
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		prefix, ws, key, lock, lockfile string
	}{
		{"", "", "s/t.tfstate", "b/s/t.tfstate", "s/t.tfstate.tflock"},
		{"", "default", "s/t.tfstate", "b/s/t.tfstate", "s/t.tfstate.tflock"},
		{"", "staging", "env:/staging/s/t.tfstate", "b/env:/staging/s/t.tfstate", "env:/staging/s/t.tfstate.tflock"},
		{"wsp", "prod", "wsp/prod/s/t.tfstate", "b/wsp/prod/s/t.tfstate", "wsp/prod/s/t.tfstate.tflock"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+"/"+tt.ws, func(t *testing.T) {
			c := &Config{Bucket: "b", Key: "s/t.tfstate", WorkspaceKeyPrefix: tt.prefix}
			if got := c.StateKey(tt.ws); got != tt.key {
				t.Errorf("StateKey = %q, want %q", got, tt.key)
			}
			if got := c.LockID(tt.ws); got != tt.lock {
				t.Errorf("LockID = %q, want %q", got, tt.lock)
			}
			if got := c.LockfileKey(tt.ws); got != tt.lockfile {
				t.Errorf("LockfileKey = %q, want %q", got, tt.lockfile)
			}
		})
	}
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		bc    []string
		want  string
	}{
		{"no backend", map[string]string{"main.tf": `terraform {}`}, nil, `no backend "s3" block`},
		{"other backend", map[string]string{"main.tf": `terraform {
  backend "gcs" {}
}`}, nil, `main.tf:2:3: backend "gcs"`},
		{"two blocks", map[string]string{"a.tf": `terraform {
  backend "s3" {}
}`, "b.tf": `terraform {
  backend "s3" {}
}`}, nil, "b.tf:2:3: a second backend"},
		{"syntax error", map[string]string{"main.tf": "terraform {\n  backend \"s3\" {\n bucket = \n}"}, nil, "main.tf:"},
		{"variable", map[string]string{"main.tf": `terraform {
  backend "s3" {
    bucket = var.b
  }
}`}, nil, "main.tf:3:14: bucket: backend settings must be literal values"},
		{"wrong type", map[string]string{"main.tf": `terraform {
  backend "s3" {
    use_path_style = 3
  }
}`}, nil, "main.tf:3:5: use_path_style: want true or false"},
		{"assumed role", map[string]string{"main.tf": `terraform {
  backend "s3" {
    assume_role {
      role_arn = "x"
    }
  }
}`}, nil, "main.tf:3:5: assume_role: not supported"},
		{"missing file", map[string]string{"main.tf": block}, []string{"nope.tfbackend"}, "read -backend-config file"},
		{"bad pair", map[string]string{"main.tf": block}, []string{"a b=c"}, `"a b" is not a setting name`},
		{"block in file", map[string]string{"main.tf": block, "x.hcl": "a {}\n"}, []string{"x.hcl"}, "not blocks"},
		{"not a directory", nil, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			if tt.files == nil {
				dir = filepath.Join(dir, "missing")
			}
			var bc []string
			for _, b := range tt.bc {
				if strings.HasSuffix(b, ".hcl") {
					b = filepath.Join(dir, b)
				}
				bc = append(bc, b)
			}
			_, err := Load(dir, bc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want it to say %q", err, tt.want)
			}
		})
	}
	dir := writeFiles(t, map[string]string{"main.tf": `terraform {}`})
	if _, err := Load(dir, nil); !errors.Is(err, ErrNoBackend) {
		t.Errorf("Load error = %v, want ErrNoBackend", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		c    Config
		want string
	}{
		{Config{Key: "k"}, "bucket not set"},
		{Config{}, "bucket and key not set"},
		{Config{Bucket: "b", Key: "/k"}, "must not start or end with /"},
	} {
		if err := tt.c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.c, err, tt.want)
		}
	}
}

func TestWorkspace(t *testing.T) {
	dir := writeFiles(t, map[string]string{".terraform/environment": "staging\n"})
	for _, tt := range []struct{ dir, env, want string }{
		{dir, "", "staging"},
		{dir, "prod", "prod"},
		{t.TempDir(), "", "default"},
	} {
		got, err := Workspace(tt.dir, tt.env)
		if err != nil || got != tt.want {
			t.Errorf("Workspace(%s, %q) = %q, %v, want %q", tt.dir, tt.env, got, err, tt.want)
		}
	}
}

func FuzzBackendConfig(f *testing.F) {
	f.Add([]byte(block))
	f.Add([]byte(`terraform { backend "s3" { endpoints = { s3 = "x" } } }`))
	f.Add([]byte("bucket = \"b\"\nkey = \"k\"\nuse_path_style = \"true\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c := &Config{}
		var found string
		if err := c.loadFile("main.tf", src, &found); err == nil && found != "" {
			if c.Validate() == nil && c.StateKey("w") == "" {
				t.Fatalf("a valid configuration has an empty workspace key: %+v", c)
			}
		}
		_ = (&Config{}).applyConfigFile("x.tfbackend", src)
	})
}

// TestLoadExample reads the example service's real configuration.
func TestLoadExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "..", "examples", "payment-service", "deploy", "terraform"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Bucket: "examplepay-prod-tfstate-us-east-1", Key: "eks/terraform.tfstate", Region: "us-east-1", Encrypt: true, UseLockfile: true}
	if *c != want {
		t.Errorf("Load = %+v, want %+v", *c, want)
	}
	if got := c.LockfileKey("default"); got != "eks/terraform.tfstate.tflock" {
		t.Errorf("LockfileKey = %q", got)
	}
}
