package options

import (
	"errors"
	"strings"

	"github.com/spf13/pflag"
)

// InfraBackend locates a Terraform state in an S3 backend: the
// configuration directory, -backend-config values and overrides.
type InfraBackend struct {
	// Dir holds the Terraform configuration (default ".").
	Dir string
	// BackendConfig are -backend-config files or name=value pairs, applied
	// in order after the backend block.
	BackendConfig []string
	// Workspace overrides TF_WORKSPACE and the selected workspace.
	Workspace string
	// Overrides applied last.
	Bucket, Key, Region, Endpoint string
}

// AddFlags registers the backend flags.
func (o *InfraBackend) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.Dir, "dir", "C", ".", "directory of the Terraform configuration with the backend \"s3\" block")
	fs.StringArrayVar(&o.BackendConfig, "backend-config", nil, "a backend config file (name = value lines) or one name=value pair, as terraform init -backend-config; repeatable, applied in order")
	fs.StringVar(&o.Workspace, "workspace", "", "Terraform workspace (default $TF_WORKSPACE, else the one selected in DIR/.terraform, else default)")
	fs.StringVar(&o.Bucket, "bucket", "", "override the backend's bucket")
	fs.StringVar(&o.Key, "key", "", "override the backend's key")
	fs.StringVar(&o.Region, "region", "", "override the backend's region")
	fs.StringVar(&o.Endpoint, "endpoint", "", "override the backend's S3 endpoint (an S3-compatible server)")
}

// Pairs returns the overrides as name=value pairs, after BackendConfig.
func (o *InfraBackend) Pairs() []string {
	out := append([]string(nil), o.BackendConfig...)
	for _, kv := range [][2]string{{"bucket", o.Bucket}, {"key", o.Key}, {"region", o.Region}, {"endpoint", o.Endpoint}} {
		if kv[1] != "" {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	return out
}

// InfraRollback are the flags of gantry infra state rollback.
type InfraRollback struct {
	ToVersion string
	Reason    string
	Yes       bool
}

// AddFlags registers the rollback flags.
func (o *InfraRollback) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ToVersion, "to-version", "", "the object version ID of the state to restore (see gantry infra state versions)")
	fs.StringVar(&o.Reason, "reason", "", "why the state is rolled back, recorded in the audit log (required)")
	fs.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation (required when stdin is not a terminal)")
}

// Validate checks the required flags.
func (o *InfraRollback) Validate() error {
	var missing []string
	if strings.TrimSpace(o.ToVersion) == "" {
		missing = append(missing, "--to-version")
	}
	if strings.TrimSpace(o.Reason) == "" {
		missing = append(missing, "--reason")
	}
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, " and ") + " required")
	}
	return nil
}
