// Package backend reads the S3 backend of a Terraform configuration: the
// backend "s3" block of the .tf files in a directory, values from
// -backend-config files or key=value pairs, and overrides, as terraform
// init combines them. It tells where the state of a workspace lives and
// where its lock would be.
package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// ErrNoBackend is returned when no .tf file declares a backend "s3" block.
var ErrNoBackend = errors.New(`no backend "s3" block`)

// Config is an S3 backend's settings that decide where the state is and
// how to reach it.
type Config struct {
	Bucket string
	// Key is the state's key for the default workspace.
	Key    string
	Region string
	// Endpoint is a custom S3 endpoint (endpoint, or endpoints.s3).
	Endpoint string
	// DynamoDBEndpoint is a custom DynamoDB endpoint (dynamodb_endpoint,
	// or endpoints.dynamodb).
	DynamoDBEndpoint string
	// WorkspaceKeyPrefix prefixes the keys of non-default workspaces
	// (default "env:").
	WorkspaceKeyPrefix string
	// UsePathStyle is use_path_style or force_path_style.
	UsePathStyle bool
	// DynamoDBTable is the lock table, if any.
	DynamoDBTable string
	// UseLockfile is Terraform's S3-native lock (key + ".tflock").
	UseLockfile bool
	// Encrypt asks for server-side encryption of written states.
	Encrypt bool
	// Profile, AccessKey and SecretKey pick credentials; empty uses the
	// default AWS chain.
	Profile, AccessKey, SecretKey string
}

// DefaultWorkspace is Terraform's default workspace name.
const DefaultWorkspace = "default"

// StateKey is the object key of the state of workspace ws.
func (c *Config) StateKey(ws string) string {
	if ws == "" || ws == DefaultWorkspace {
		return c.Key
	}
	prefix := c.WorkspaceKeyPrefix
	if prefix == "" {
		prefix = "env:"
	}
	return prefix + "/" + ws + "/" + c.Key
}

// LockID is the DynamoDB lock table's LockID of workspace ws's state.
func (c *Config) LockID(ws string) string { return c.Bucket + "/" + c.StateKey(ws) }

// LockfileKey is the key of Terraform's S3-native lockfile of workspace ws.
func (c *Config) LockfileKey(ws string) string { return c.StateKey(ws) + ".tflock" }

// Validate checks that the settings name a state.
func (c *Config) Validate() error {
	var missing []string
	if c.Bucket == "" {
		missing = append(missing, "bucket")
	}
	if c.Key == "" {
		missing = append(missing, "key")
	}
	if len(missing) > 0 {
		return fmt.Errorf("S3 backend: %s not set (in the backend block, a -backend-config file or a flag)", strings.Join(missing, " and "))
	}
	if strings.HasPrefix(c.Key, "/") || strings.HasSuffix(c.Key, "/") {
		return fmt.Errorf("S3 backend: key %q must not start or end with /", c.Key)
	}
	if strings.Contains(c.WorkspaceKeyPrefix, "//") {
		return fmt.Errorf("S3 backend: workspace_key_prefix %q contains //", c.WorkspaceKeyPrefix)
	}
	return nil
}

// unsupported are settings that change how the state is reached in ways
// this package does not implement; refusing them beats reading the wrong
// state or failing later with a confusing error.
var unsupported = map[string]string{
	"role_arn":                      "assumed roles",
	"assume_role":                   "assumed roles",
	"assume_role_with_web_identity": "assumed roles (the AWS_WEB_IDENTITY_TOKEN_FILE environment of the default chain works)",
	"sse_customer_key":              "customer-provided encryption keys",
	"kms_key_id":                    "KMS encryption of written states",
}

// Set applies one setting, name = value, as in the block or a
// -backend-config file. Settings that do not affect where the state is
// (skip_*, retries, proxies) are accepted and ignored.
func (c *Config) set(name string, v cty.Value) error {
	if why, ok := unsupported[name]; ok {
		return fmt.Errorf("%s: not supported by gantry infra (%s)", name, why)
	}
	str := func(dst *string) error {
		if v.IsNull() {
			*dst = ""
			return nil
		}
		if v.Type() == cty.Bool || v.Type() == cty.Number {
			return fmt.Errorf("%s: want a string, got %s", name, v.Type().FriendlyName())
		}
		if v.Type() != cty.String {
			return fmt.Errorf("%s: want a string, got %s", name, v.Type().FriendlyName())
		}
		*dst = v.AsString()
		return nil
	}
	boolean := func(dst *bool) error {
		if v.IsNull() {
			*dst = false
			return nil
		}
		switch {
		case v.Type() == cty.Bool:
			*dst = v.True()
		case v.Type() == cty.String && (v.AsString() == "true" || v.AsString() == "false"):
			*dst = v.AsString() == "true"
		default:
			return fmt.Errorf("%s: want true or false, got %s", name, v.Type().FriendlyName())
		}
		return nil
	}
	switch name {
	case "bucket":
		return str(&c.Bucket)
	case "key":
		return str(&c.Key)
	case "region":
		return str(&c.Region)
	case "endpoint":
		return str(&c.Endpoint)
	case "dynamodb_endpoint":
		return str(&c.DynamoDBEndpoint)
	case "workspace_key_prefix":
		return str(&c.WorkspaceKeyPrefix)
	case "force_path_style", "use_path_style":
		return boolean(&c.UsePathStyle)
	case "dynamodb_table":
		return str(&c.DynamoDBTable)
	case "use_lockfile":
		return boolean(&c.UseLockfile)
	case "encrypt":
		return boolean(&c.Encrypt)
	case "profile":
		return str(&c.Profile)
	case "access_key":
		return str(&c.AccessKey)
	case "secret_key":
		return str(&c.SecretKey)
	case "endpoints":
		if v.IsNull() {
			return nil
		}
		if !v.Type().IsObjectType() && !v.Type().IsMapType() {
			return fmt.Errorf("endpoints: want an object such as { s3 = \"https://...\" }, got %s", v.Type().FriendlyName())
		}
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			var dst *string
			switch k.AsString() {
			case "s3":
				dst = &c.Endpoint
			case "dynamodb":
				dst = &c.DynamoDBEndpoint
			default:
				continue // sts, iam, ...: not used here
			}
			if ev.IsNull() || ev.Type() != cty.String {
				return fmt.Errorf("endpoints.%s: want a string", k.AsString())
			}
			*dst = ev.AsString()
		}
		return nil
	}
	return nil
}

// Load reads the backend "s3" block of the .tf files in dir (ErrNoBackend
// when there is none), then applies each of backendConfig in order as
// terraform init -backend-config does: a path to an HCL file of
// name = value lines, or one name=value pair.
func Load(dir string, backendConfig []string) (*Config, error) {
	c := &Config{}
	if err := c.loadDir(dir); err != nil {
		return nil, err
	}
	for _, bc := range backendConfig {
		if err := c.ApplyBackendConfig(bc); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Config) loadDir(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	if len(files) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("read Terraform configuration: %w", err)
		}
	}
	sort.Strings(files)
	var found string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read Terraform configuration: %w", err)
		}
		if err := c.loadFile(f, src, &found); err != nil {
			return err
		}
	}
	if found == "" {
		return fmt.Errorf("%s: %w", dir, ErrNoBackend)
	}
	return nil
}

// loadFile applies the backend "s3" block of one .tf file; found holds
// the position of the block already seen, if any.
func (c *Config) loadFile(name string, src []byte, found *string) error {
	body, err := parseBody(src, name)
	if err != nil {
		return err
	}
	for _, tb := range body.Blocks {
		if tb.Type != "terraform" {
			continue
		}
		for _, bb := range tb.Body.Blocks {
			if bb.Type != "backend" || len(bb.Labels) != 1 {
				continue
			}
			at := bb.DefRange().Ptr()
			if bb.Labels[0] != "s3" {
				return fmt.Errorf("%s: backend %q: gantry infra reads only the s3 backend", pos(at), bb.Labels[0])
			}
			if *found != "" {
				return fmt.Errorf("%s: a second backend \"s3\" block (the first is at %s)", pos(at), *found)
			}
			*found = pos(at)
			if err := c.applyBody(bb.Body); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseBody(src []byte, name string) (*hclsyntax.Body, error) {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %w", diags)
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, fmt.Errorf("parse %s: not HCL native syntax", name)
	}
	return body, nil
}

func pos(r *hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// applyBody applies the attributes of a backend block or a
// -backend-config file in source order. Values must be literals, as
// Terraform requires in backend configuration.
func (c *Config) applyBody(body *hclsyntax.Body) error {
	attrs := make([]*hclsyntax.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	for _, a := range attrs {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return fmt.Errorf("%s: %s: backend settings must be literal values (%s)", pos(a.Expr.Range().Ptr()), a.Name, diags[0].Summary)
		}
		if err := c.set(a.Name, v); err != nil {
			return fmt.Errorf("%s: %w", pos(a.SrcRange.Ptr()), err)
		}
	}
	for _, b := range body.Blocks {
		if why, ok := unsupported[b.Type]; ok {
			return fmt.Errorf("%s: %s: not supported by gantry infra (%s)", pos(b.DefRange().Ptr()), b.Type, why)
		}
	}
	return nil
}

// ApplyBackendConfig applies one -backend-config argument: a name=value
// pair when it has an = and names no existing file, else an HCL file.
func (c *Config) ApplyBackendConfig(arg string) error {
	if name, value, ok := strings.Cut(arg, "="); ok {
		if _, err := os.Stat(arg); err != nil {
			name = strings.TrimSpace(name)
			if !hclsyntax.ValidIdentifier(name) {
				return fmt.Errorf("-backend-config %q: %q is not a setting name", arg, name)
			}
			// As terraform does, the value is a string unless it is a bool.
			if err := c.set(name, cty.StringVal(value)); err != nil {
				return fmt.Errorf("-backend-config %s: %w", name, err)
			}
			return nil
		}
	}
	src, err := os.ReadFile(arg)
	if err != nil {
		return fmt.Errorf("read -backend-config file: %w", err)
	}
	return c.applyConfigFile(arg, src)
}

// applyConfigFile applies a -backend-config file's name = value lines.
func (c *Config) applyConfigFile(name string, src []byte) error {
	body, err := parseBody(src, name)
	if err != nil {
		return err
	}
	if len(body.Blocks) > 0 {
		return fmt.Errorf("%s: a -backend-config file holds name = value lines, not blocks", pos(body.Blocks[0].DefRange().Ptr()))
	}
	return c.applyBody(body)
}

// Workspace returns the workspace terraform would use in dir: tfWorkspace
// (the TF_WORKSPACE environment variable) when set, else the one recorded
// by terraform workspace select in dir/.terraform/environment, else
// "default".
func Workspace(dir, tfWorkspace string) (string, error) {
	if tfWorkspace != "" {
		return tfWorkspace, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, ".terraform", "environment"))
	if errors.Is(err, os.ErrNotExist) {
		return DefaultWorkspace, nil
	}
	if err != nil {
		return "", fmt.Errorf("read the selected workspace: %w", err)
	}
	if ws := strings.TrimSpace(string(b)); ws != "" {
		return ws, nil
	}
	return DefaultWorkspace, nil
}
