// Package kubetest starts a real Kubernetes control plane for tests, from
// binaries built once per version by scripts/testbed/build.sh: etcd
// (Debian's etcd-server), kube-apiserver, kube-controller-manager and
// kube-scheduler, kwok with fake nodes that run pods (no container
// engine), and the Argo Rollouts controller with its CRDs.
//
// A test package starts the bed once: its TestMain calls Main, its tests
// call Start, which starts the bed on first use and returns it. Main
// stops every process (each in its own process group) when the tests end,
// and keeps the bed's directory (logs, certificates, kubeconfig) when a
// test failed, saying where it is.
//
// Missing binaries skip the tests locally and fail them under CI=true
// (internal/testenv).
package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// The versions of the bed; scripts/testbed/build.sh builds the same
// (TestVersionsMatchBuildScript keeps them in step).
const (
	KubernetesVersion   = "v1.31.4"
	KwokVersion         = "v0.7.0"
	ArgoRolloutsVersion = "v1.8.5"
)

// CacheEnv overrides where the bed's binaries are (as for build.sh).
const CacheEnv = "GANTRY_TESTBED_CACHE"

// CacheDir is where build.sh puts the binaries.
func CacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "gantry-testbed")
	}
	return filepath.Join(home, ".cache", "gantry", "testbed")
}

// BedName names the bed's binaries in a missing-peer message (and in
// internal/testenv's list of peers CI may lack).
const BedName = "kube test bed"

// Nodes are the names of the bed's fake nodes.
var Nodes = []string{"kwok-node-0", "kwok-node-1"}

type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kwok, argo, crds string
}

// MissingError names a binary of the bed that is not there.
type MissingError struct {
	What, How string
}

func (e *MissingError) Error() string { return fmt.Sprintf("%s not found: %s", e.What, e.How) }

func findBinaries() (binaries, error) {
	cache := CacheDir()
	how := "run scripts/testbed/build.sh (or set " + CacheEnv + ")"
	b := binaries{
		apiserver:         filepath.Join(cache, "kubernetes-"+KubernetesVersion, "kube-apiserver"),
		controllerManager: filepath.Join(cache, "kubernetes-"+KubernetesVersion, "kube-controller-manager"),
		scheduler:         filepath.Join(cache, "kubernetes-"+KubernetesVersion, "kube-scheduler"),
		kwok:              filepath.Join(cache, "kwok-"+KwokVersion, "kwok"),
		argo:              filepath.Join(cache, "argo-rollouts-"+ArgoRolloutsVersion, "rollouts-controller"),
		crds:              filepath.Join(cache, "argo-rollouts-"+ArgoRolloutsVersion, "crds"),
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return b, &MissingError{What: "etcd", How: "install Debian's etcd-server (scripts/deps.sh)"}
	}
	b.etcd = etcd
	for _, p := range []string{b.apiserver, b.controllerManager, b.scheduler, b.kwok, b.argo, b.crds} {
		if _, err := os.Stat(p); err != nil {
			return b, &MissingError{What: BedName, How: p + " is missing: " + how}
		}
	}
	return b, nil
}

// Bed is a running control plane.
type Bed struct {
	// Dir holds the logs (NAME.log), certificates and kubeconfig.
	Dir        string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
	// StartTime is how long the bed took to become ready.
	StartTime time.Duration
	// CA signs the API server's certificates and the client certificates
	// it accepts: Issue a client certificate for a user of the tests'
	// choosing (with no RoleBinding, RBAC denies it everything).
	CA *CA

	components []*component
}

// PodLog is what every container of the bed logs: kwok serves it as the
// kubelet would (GET .../pods/NAME/log), from a file in the CRI log
// format that a real kubelet reads.
var PodLog = []string{"listening on :8080", "ready"}

// HasPodLogs reports whether out, what `gantry env logs` printed, holds
// PodLog for each of its pods, whose names start with prefix: lines
// "POD | TEXT", those of several pods possibly interleaved.
func HasPodLogs(out, prefix string) bool {
	byPod := map[string][]string{}
	for l := range strings.Lines(out) {
		pod, text, ok := strings.Cut(strings.TrimSuffix(l, "\n"), " | ")
		if !ok || !strings.HasPrefix(pod, prefix) {
			return false
		}
		byPod[pod] = append(byPod[pod], text)
	}
	for _, lines := range byPod {
		if !slices.Equal(lines, PodLog) {
			return false
		}
	}
	return len(byPod) > 0
}

// writePodLog writes PodLog in the CRI log format and the kwok
// configuration that serves it for every container.
func writePodLog(dir string) (config string, err error) {
	var b strings.Builder
	for _, l := range PodLog {
		fmt.Fprintf(&b, "2026-01-01T00:00:00.000000000Z stdout F %s\n", l)
	}
	logs := filepath.Join(dir, "container.log")
	if err := os.WriteFile(logs, []byte(b.String()), 0o600); err != nil {
		return "", err
	}
	config = filepath.Join(dir, "kwok.yaml")
	return config, os.WriteFile(config, []byte(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {name: bed}
spec:
  logs:
  - logsFile: `+logs+"\n"), 0o600)
}

type component struct {
	name   string
	log    string
	p      *proc.Process
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

var shared struct {
	mu      sync.Mutex
	main    bool
	started bool
	bed     *Bed
	err     error
}

// Main runs the tests of a package that uses the bed and stops the bed
// when they end; call it from TestMain. When a test failed it keeps the
// bed's directory and prints where the logs are.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	b := shared.bed
	shared.mu.Unlock()
	if b != nil {
		rss := b.RSS()
		stopErr := b.Stop()
		fmt.Fprintf(os.Stderr, "kube test bed: ready in %s, %d MiB RSS at the end\n", b.StartTime.Round(100*time.Millisecond), rss>>20)
		if stopErr != nil {
			fmt.Fprintf(os.Stderr, "kube test bed: stop: %v\n", stopErr)
		}
		if code != 0 || stopErr != nil {
			fmt.Fprintf(os.Stderr, "kube test bed: logs kept in %s (%s)\n", b.Dir, b.logNames())
		} else {
			_ = os.RemoveAll(b.Dir)
		}
	}
	os.Exit(code)
}

// Start returns the package's bed, starting it on first use. Without
// the binaries it skips the test (fails it under CI=true).
func Start(t testing.TB) *Bed {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("kubetest.Start: the package's TestMain must call kubetest.Main, which stops the bed")
	}
	if !shared.started {
		shared.started = true
		bins, err := findBinaries()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			shared.bed, err = start(ctx, bins)
			cancel()
		}
		shared.err = err
	}
	var missing *MissingError
	if errors.As(shared.err, &missing) {
		testenv.Missing(t, missing.What, missing.How)
	}
	if shared.err != nil {
		t.Fatalf("start the kube test bed: %v", shared.err)
	}
	return shared.bed
}

// freePort returns a TCP port free on the loopback address now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freePorts(n int) ([]int, error) {
	var out []int
	for len(out) < n {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func start(ctx context.Context, bins binaries) (b *Bed, err error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "gantry-kubebed-")
	if err != nil {
		return nil, err
	}
	b = &Bed{Dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (logs in %s)", err, dir)
			_ = b.Stop()
		}
	}()
	ports, err := freePorts(6)
	if err != nil {
		return b, err
	}
	etcdPort, peerPort, apiPort, argoMetrics, argoHealth, kubeletPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]

	ca, err := NewCA("gantry kube test bed CA")
	if err != nil {
		return b, err
	}
	b.CA = ca
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		return b, err
	}
	servingCert, servingKey, err := ca.writeIssued(dir, "apiserver", "kube-apiserver", nil,
		"127.0.0.1", "localhost", "10.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
	if err != nil {
		return b, err
	}
	// kwok's kubelet API (pod logs), which the apiserver reaches at the
	// nodes' InternalIP.
	kubeletCert, kubeletKey, err := ca.writeIssued(dir, "kubelet", "kwok", nil, "127.0.0.1")
	if err != nil {
		return b, err
	}
	kwokConfig, err := writePodLog(dir)
	if err != nil {
		return b, err
	}
	adminCert, adminKey, err := ca.Issue("admin", []string{"system:masters"})
	if err != nil {
		return b, err
	}
	saKey, saPub, err := writeServiceAccountKeys(dir)
	if err != nil {
		return b, err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	b.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["bed"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.PEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: adminCert, ClientKeyData: adminKey}
	kc.Contexts["bed"] = &clientcmdapi.Context{Cluster: "bed", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "bed"
	if err := clientcmd.WriteToFile(*kc, b.Kubeconfig); err != nil {
		return b, fmt.Errorf("write the kubeconfig: %w", err)
	}
	b.Config = &rest.Config{Host: server, QPS: 100, Burst: 200, TLSClientConfig: rest.TLSClientConfig{CAData: ca.PEM, CertData: adminCert, KeyData: adminKey}}
	if b.Client, err = kubernetes.NewForConfig(b.Config); err != nil {
		return b, err
	}
	if b.Dynamic, err = dynamic.NewForConfig(b.Config); err != nil {
		return b, err
	}

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := b.run(ctx, "etcd", bins.etcd, "--name", "bed", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "bed="+peerURL, "--log-level", "warn"); err != nil {
		return b, err
	}
	if err := b.wait(ctx, "etcd", func(ctx context.Context) error { return httpOK(ctx, etcdURL+"/health") }); err != nil {
		return b, err
	}
	if err := b.run(ctx, "kube-apiserver", bins.apiserver,
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(apiPort), "--tls-cert-file", servingCert, "--tls-private-key-file", servingKey,
		"--client-ca-file", caFile, "--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-cluster-ip-range", "10.0.0.0/24",
		"--authorization-mode", "Node,RBAC", "--disable-admission-plugins", "ServiceAccount",
		"--enable-priority-and-fairness=false", "--profiling=false", "--endpoint-reconciler-type", "none",
		"--kubelet-preferred-address-types", "InternalIP"); err != nil {
		return b, err
	}
	if err := b.wait(ctx, "kube-apiserver", func(ctx context.Context) error {
		_, err := b.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return b, err
	}
	if err := b.run(ctx, "kube-controller-manager", bins.controllerManager, "--kubeconfig", b.Kubeconfig,
		"--authentication-kubeconfig", b.Kubeconfig, "--authorization-kubeconfig", b.Kubeconfig,
		"--service-account-private-key-file", saKey, "--root-ca-file", caFile, "--leader-elect=false",
		// kwok's node heartbeats arrive late on a loaded machine; past the
		// default 40 s grace the node lifecycle controller marks the node
		// NotReady and its pods unready, and kwok never makes them ready
		// again.
		"--node-monitor-grace-period", "10m",
		"--secure-port", "0"); err != nil {
		return b, err
	}
	if err := b.run(ctx, "kube-scheduler", bins.scheduler, "--kubeconfig", b.Kubeconfig,
		"--authentication-kubeconfig", b.Kubeconfig, "--authorization-kubeconfig", b.Kubeconfig,
		"--leader-elect=false", "--secure-port", "0"); err != nil {
		return b, err
	}
	if err := b.run(ctx, "kwok", bins.kwok, "--kubeconfig", b.Kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
		"--cidr", "10.244.0.1/16", "--node-ip", "127.0.0.1", "--node-port", strconv.Itoa(kubeletPort),
		"--server-address", "127.0.0.1:"+strconv.Itoa(kubeletPort),
		"--tls-cert-file", kubeletCert, "--tls-private-key-file", kubeletKey, "--config", kwokConfig); err != nil {
		return b, err
	}
	for _, n := range Nodes {
		if err := createNode(ctx, b.Client, n); err != nil {
			return b, err
		}
	}
	if err := b.applyCRDs(ctx, bins.crds); err != nil {
		return b, err
	}
	if err := b.run(ctx, "rollouts-controller", bins.argo, "--kubeconfig", b.Kubeconfig, "--leader-elect=false",
		"--metricsport", strconv.Itoa(argoMetrics), "--healthzPort", strconv.Itoa(argoHealth)); err != nil {
		return b, err
	}
	if err := b.wait(ctx, "rollouts-controller", func(ctx context.Context) error {
		return httpOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", argoHealth))
	}); err != nil {
		return b, err
	}
	if err := b.wait(ctx, "kwok", func(ctx context.Context) error { return nodesReady(ctx, b.Client) }); err != nil {
		return b, err
	}
	if err := b.wait(ctx, "kube-controller-manager", func(ctx context.Context) error {
		_, err := b.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return b, err
	}
	b.StartTime = time.Since(began)
	return b, nil
}

func writeServiceAccountKeys(dir string) (keyFile, pubFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

// run starts a component in its own process group, logging to
// DIR/NAME.log. Its own context ends it: cancelling the start's ctx
// does not.
func (b *Bed) run(_ context.Context, name, bin string, args ...string) error {
	logFile := filepath.Join(b.Dir, name+".log")
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := proc.Command(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), "HOME="+b.Dir) // kwok and argo read ~/.kube and ~/.kwok
	p, err := proc.Start(ctx, cmd)
	if err != nil {
		cancel()
		return fmt.Errorf("start %s: %w", name, err)
	}
	c := &component{name: name, log: logFile, p: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = p.Wait()
	}()
	b.components = append(b.components, c)
	return nil
}

// wait polls ready until it succeeds, a component exits, or ctx ends.
func (b *Bed) wait(ctx context.Context, what string, ready func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = ready(rctx)
		cancel()
		if last == nil {
			return nil
		}
		for _, c := range b.components {
			select {
			case <-c.done:
				return fmt.Errorf("%s exited (%v) while waiting for %s: %s", c.name, c.err, what, tail(c.log))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w: last: %v", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// tail returns the last lines of a log, for an error.
func tail(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return file + ":\n" + strings.Join(lines, "\n")
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func createNode(ctx context.Context, c kubernetes.Interface, name string) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "kubernetes.io/role": "agent", "node-role.kubernetes.io/agent": ""},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{"cpu": resource.MustParse("32"), "memory": resource.MustParse("256Gi"), "pods": resource.MustParse("110")},
			Capacity:    corev1.ResourceList{"cpu": resource.MustParse("32"), "memory": resource.MustParse("256Gi"), "pods": resource.MustParse("110")},
		},
	}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

func nodesReady(ctx context.Context, c kubernetes.Interface) error {
	for _, n := range Nodes {
		node, err := c.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := false
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return fmt.Errorf("node %s is not ready", n)
		}
	}
	return nil
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// applyCRDs creates the Argo Rollouts CRDs and waits until they are
// established.
func (b *Bed) applyCRDs(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*-crd.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return &MissingError{What: filepath.Join(dir, "*-crd.yaml"), How: "run scripts/testbed/build.sh"}
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		if _, err := b.Dynamic.Resource(crdResource).Create(ctx, &obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create the CRD of %s: %w", f, err)
		}
		names = append(names, obj.GetName())
	}
	return b.wait(ctx, "the Argo Rollouts CRDs", func(ctx context.Context) error {
		for _, n := range names {
			crd, err := b.Dynamic.Resource(crdResource).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			if !established {
				return fmt.Errorf("CRD %s is not established", n)
			}
		}
		return nil
	})
}

// Stop ends every component, the last started first (SIGTERM to its
// process group, SIGKILL after proc.WaitDelay), and waits for each.
func (b *Bed) Stop() error {
	var errs []error
	for i := len(b.components) - 1; i >= 0; i-- {
		c := b.components[i]
		c.cancel()
		<-c.done
		if c.err != nil && !errors.Is(c.err, context.Canceled) && !isSignalled(c.err) {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, c.err))
		}
	}
	b.components = nil
	return errors.Join(errs...)
}

// isSignalled reports whether a component ended by the signal Stop sent
// (or exited with status 1 or 2 on it, as some do on SIGTERM). exec
// reports most such ends as the context's cancellation, which Stop
// ignores too.
func isSignalled(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	return !ee.Exited() || ee.ExitCode() <= 2
}

// RSS returns the resident memory of the bed's processes, in bytes.
func (b *Bed) RSS() int64 {
	var total int64
	for _, c := range b.components {
		members, err := proc.Alive(c.p.Group())
		if err != nil {
			continue
		}
		for _, m := range members {
			total += rssOf(m.PID)
		}
	}
	return total
}

func rssOf(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (b *Bed) logNames() string {
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	return strings.Join(names, ", ")
}
