// Package runtime holds the vocabulary shared by the delivery code: what an
// environment runs (a Workload resolved from the chart's pod template), the
// Runtime that starts its instances, and the Deployer that the deploy step,
// `gantry deploy` and `gantry env` drive through the long-lived `gantry
// serve` process.
//
// The implementations live below it: runtime/local runs instances under an
// OCI runtime (runc) or as plain processes; the environment controller in
// the serve process records desired state and reconciles toward it.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// Workload is one container of a chart's pod template, resolved: the image
// pinned by digest, the environment from env/envFrom, ports, probes,
// replicas, resources and security context. It is what an environment's
// revision runs, and it is recorded as JSON with the revision.
type Workload struct {
	// Name identifies the workload inside its environment (the container
	// name of the pod template).
	Name string `json:"name"`
	// Image is the reference by digest: host[:port]/repo@sha256:...
	Image string `json:"image"`
	// Command and Args override the image's entrypoint and cmd when set,
	// as in a Kubernetes container.
	Command    []string `json:"command,omitempty"`
	Args       []string `json:"args,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	// Env holds KEY=VALUE pairs in the order the pod template gives them
	// (envFrom first, then env, as Kubernetes applies them).
	Env       []string  `json:"env,omitempty"`
	Ports     []Port    `json:"ports,omitempty"`
	Readiness *Probe    `json:"readiness,omitempty"`
	Liveness  *Probe    `json:"liveness,omitempty"`
	Replicas  int       `json:"replicas"`
	Resources Resources `json:"resources"`
	Security  Security  `json:"security"`
	// PortEnv names the variable through which an instance learns the host
	// port it must listen on: instances share the host network, so each
	// replica gets its own port for each declared container port, and the
	// variable (PORT unless the environment says otherwise) is set to the
	// port assigned to the first one.
	PortEnv string `json:"portEnv,omitempty"`
	// TerminationGrace is how long a stopping instance gets between SIGTERM
	// and SIGKILL.
	TerminationGrace time.Duration `json:"terminationGrace,omitempty"`
}

// Port is a declared container port.
type Port struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int    `json:"containerPort"`
}

// Probe is a readiness or liveness probe. Exactly one of HTTPGet, TCPPort
// and Exec is set. Ports name a declared port or give its number; the
// runtime maps them to the instance's host port.
type Probe struct {
	HTTPGet          *HTTPGetAction `json:"httpGet,omitempty"`
	TCPPort          string         `json:"tcpPort,omitempty"`
	Exec             []string       `json:"exec,omitempty"`
	InitialDelay     time.Duration  `json:"initialDelay,omitempty"`
	Period           time.Duration  `json:"period,omitempty"`  // default 10s
	Timeout          time.Duration  `json:"timeout,omitempty"` // default 1s
	SuccessThreshold int            `json:"successThreshold,omitempty"`
	FailureThreshold int            `json:"failureThreshold,omitempty"` // default 3
}

// HTTPGetAction is an HTTP probe: success is a status in [200, 400).
type HTTPGetAction struct {
	Path   string `json:"path"`
	Port   string `json:"port"`
	Scheme string `json:"scheme,omitempty"` // HTTP (default) or HTTPS
}

// Resources are the container's limits; zero means unlimited.
type Resources struct {
	MemoryLimit int64 `json:"memoryLimit,omitempty"` // bytes
	CPUMillis   int64 `json:"cpuMillis,omitempty"`   // 1000 = one core
}

// Security is the effective security context (pod level merged with
// container level, container winning).
type Security struct {
	RunAsUser                *int64 `json:"runAsUser,omitempty"`
	RunAsGroup               *int64 `json:"runAsGroup,omitempty"`
	RunAsNonRoot             bool   `json:"runAsNonRoot,omitempty"`
	ReadOnlyRootFilesystem   bool   `json:"readOnlyRootFilesystem,omitempty"`
	AllowPrivilegeEscalation *bool  `json:"allowPrivilegeEscalation,omitempty"`
}

// Isolation says how an instance runs.
type Isolation string

const (
	// OCI runs the instance under an OCI runtime (runc) from the image's
	// unpacked filesystem, with the image's user and cgroup limits.
	OCI Isolation = "oci"
	// Process runs the image's entrypoint from the unpacked filesystem as a
	// plain child process, where no OCI runtime can run (no root, no
	// cgroups); limits and the read-only root are not enforced.
	Process Isolation = "process"
)

// InstanceSpec is one replica to start.
type InstanceSpec struct {
	// ID is unique per instance and stable across restarts of the serve
	// process (environment, revision, replica index), so that a restarted
	// process finds what it started before.
	ID       string
	Workload Workload
	// Env is added to the workload's environment (connection settings of
	// the environment's services, the webhook sink's address).
	Env []string
	// Dir is where the runtime keeps the instance's bundle, root
	// filesystem and logs.
	Dir string
}

// Instance is a running, supervised replica: the runtime restarts it with
// backoff when it exits or fails liveness.
type Instance interface {
	ID() string
	// Addr is host:port of the instance's first declared port on the host.
	Addr() string
	// Ready reports whether the readiness probe passes now.
	Ready() bool
	// Status is a short account of the instance for `gantry env ls` and
	// errors: state, restarts, the last probe answer.
	Status() InstanceStatus
	// Stop sends SIGTERM, waits for the termination grace, then SIGKILL, and
	// stops supervising.
	Stop(ctx context.Context) error
}

// InstanceStatus is what an instance reports about itself.
type InstanceStatus struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	PID       int       `json:"pid,omitempty"`
	State     string    `json:"state"` // starting, ready, unready, crashed, stopped
	Restarts  int       `json:"restarts"`
	LastProbe string    `json:"lastProbe,omitempty"` // the probe's last answer, e.g. "GET /readyz: 503"
	Since     time.Time `json:"since"`
	Isolation Isolation `json:"isolation"`
}

// Runtime starts instances of a workload.
type Runtime interface {
	// Start unpacks the image (once per digest) and starts the instance.
	// It returns once the process runs; readiness is reported by Ready.
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
	// Isolation says how this runtime runs instances on this machine.
	Isolation() Isolation
}

// ErrNotReady is returned (wrapped) by a deploy whose new revision never
// became ready; the previous revision keeps serving.
var ErrNotReady = errors.New("revision did not become ready")

// ErrDeployInProgress is returned when a deploy of the same environment is
// already running.
var ErrDeployInProgress = errors.New("another deploy of this environment is in progress")

// ErrInvalidRequest is wrapped by the refusal of a malformed request (an
// environment or workload name that is not a DNS label, no workload, no
// image): asking again the same way fails again.
var ErrInvalidRequest = errors.New("invalid request")

// ErrClosed is returned by a deployer that is shutting down (the serve
// process stops); a new serve process will answer.
var ErrClosed = errors.New("environment controller closed")

// ErrAdmission is wrapped by every admission refusal (see runtime.Admitter).
var ErrAdmission = errors.New("admission refused")

// Admitter decides whether an image may run in an environment before
// anything starts: the Kyverno verifyImages rules of the repository's
// policy and gantry's evidence requirement. It returns the reference to run
// (tags rewritten to digests where the policy mutates them) or an error
// wrapping ErrAdmission that names the rule and the reason.
type Admitter interface {
	Admit(ctx context.Context, environment string, spec EnvironmentSpec, image string) (string, error)
}

// DeployRequest asks an environment to run a new revision.
type DeployRequest struct {
	Environment string     `json:"environment"`
	Workloads   []Workload `json:"workloads"`
	// Spec is the environment as the run's pipeline file declares it; the
	// controller records it with the revision, so a rollback or a restart
	// of the serve process needs no repository.
	Spec EnvironmentSpec `json:"spec"`
	// Who and Run say who asked and from which run (0 for `gantry deploy`).
	Who string `json:"who"`
	Run int64  `json:"run,omitempty"`
	// Reason is shown in the history ("deploy", "rollback to 3", ...).
	Reason string `json:"reason,omitempty"`
}

// EnvironmentSpec is what the pipeline file's `environments:` entry says
// about an environment, with the files it names read in.
type EnvironmentSpec struct {
	// Services the environment keeps for its life (postgres, redis, sqs);
	// their connection settings are added to every instance's environment.
	Services []string `json:"services,omitempty"`
	// Policies are Kyverno ClusterPolicy documents (file name and bytes)
	// enforced before anything starts.
	Policies []File `json:"policies,omitempty"`
	// Require lists the evidence gates the digest must carry, passing and
	// signed (as `gantry verify --require`), with the key that signs them.
	Require []string `json:"require,omitempty"`
	Key     string   `json:"key,omitempty"`
	// AlertRules are Prometheus rule files loaded by the environment's
	// Prometheus; PrometheusURL names an existing Prometheus instead.
	AlertRules    []File `json:"alertRules,omitempty"`
	PrometheusURL string `json:"prometheusURL,omitempty"`
}

// File is a file of the repository carried by value.
type File struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Revision is one entry of an environment's history.
type Revision struct {
	Environment string     `json:"environment"`
	Number      int        `json:"number"`
	Digest      string     `json:"digest"` // of the first workload's image
	Workloads   []Workload `json:"workloads"`
	Run         int64      `json:"run,omitempty"`
	Who         string     `json:"who"`
	Reason      string     `json:"reason,omitempty"`
	// Status: deploying, serving, superseded, failed, refused.
	Status  string    `json:"status"`
	Message string    `json:"message,omitempty"` // why it failed or was refused
	Created time.Time `json:"created"`
}

// EnvironmentStatus is an environment as `gantry env ls` shows it.
type EnvironmentStatus struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// SinkURL is the environment's webhook sink (GANTRY_SINK_URL of its
	// instances); PrometheusURL the Prometheus evaluating its alert rules
	// ("" when its spec has none).
	SinkURL       string           `json:"sinkURL,omitempty"`
	PrometheusURL string           `json:"prometheusURL,omitempty"`
	Current       *Revision        `json:"current,omitempty"`
	Instances     []InstanceStatus `json:"instances,omitempty"`
}

// Deployer is the environment controller as its clients see it. The serve
// process implements it; a client over the Unix socket implements it too,
// so the deploy step does not care which side of the socket it is on.
type Deployer interface {
	// Deploy admits, records the new revision as desired state, starts its
	// instances, waits until they are ready, switches the environment's
	// proxy to them without dropping requests and stops the old ones. A
	// revision that never becomes ready fails with ErrNotReady and the
	// previous one keeps serving.
	Deploy(ctx context.Context, req DeployRequest) (Revision, error)
	// Rollback redeploys the previous serving revision (toRevision 0) or
	// the given one, through the same admission.
	Rollback(ctx context.Context, environment string, toRevision int, who, reason string) (Revision, error)
	Status(ctx context.Context, environment string) (EnvironmentStatus, error)
	List(ctx context.Context) ([]EnvironmentStatus, error)
	History(ctx context.Context, environment string) ([]Revision, error)
	// Logs copies the environment's instance logs to w (each line prefixed
	// with the instance ID); with follow it keeps copying until ctx ends.
	Logs(ctx context.Context, environment string, follow bool, w io.Writer) error
}
