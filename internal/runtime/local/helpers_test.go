package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gantry-ci/gantry/internal/oci"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// The test image is built once per test binary (a Go build of
// testdata/app on gantry's distroless-style base) and pushed to a fresh
// embedded registry by each test.
var (
	buildOnce sync.Once
	built     *oci.Result
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func testIndex(t testing.TB) *oci.Result {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gantry-runtime-test-")
		if buildErr != nil {
			return
		}
		built, buildErr = oci.Build(context.Background(), oci.Options{
			Dir: "testdata/app", SourceDateEpoch: 1700000000, Layout: filepath.Join(buildDir, "layout"),
			Platforms: []v1.Platform{{OS: "linux", Architecture: goruntime.GOARCH}},
		})
	})
	if buildErr != nil {
		t.Fatalf("build the test image: %v", buildErr)
	}
	return built
}

// pushed starts an embedded registry and pushes idx to it; it returns the
// reference by digest.
func pushed(t testing.TB, idx v1.ImageIndex) string {
	t.Helper()
	ctx := context.Background()
	srv, err := registry.Serve(ctx, t.TempDir(), "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	repo, err := oci.Repository(srv.Addr()+"/app", true)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := oci.PushIndex(ctx, idx, repo, nil, oci.PushOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return ref.String()
}

func testImage(t testing.TB) string {
	t.Helper()
	return pushed(t, testIndex(t).Index)
}

// newRuntime returns a runtime of the isolation asked for. OCI needs root
// and runc: without them the test skips, but under CI=true as root it
// fails when runc does not work.
func newRuntime(t testing.TB, iso runtime.Isolation, dir string) *Runtime {
	t.Helper()
	var opts []Option
	if iso == runtime.Process {
		opts = append(opts, WithPlainProcesses())
	} else if os.Geteuid() != 0 {
		t.Skip("runc needs root")
	} else if _, err := exec.LookPath("runc"); err != nil {
		testenv.Missing(t, "runc", "apt-get install runc (scripts/deps.sh)")
	}
	r, err := New(context.Background(), dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Isolation(); got != iso {
		t.Fatalf("isolation = %s (%s), want %s", got, r.Why(), iso)
	}
	return r
}

// eventually polls cond until it holds or the deadline passes (no timed
// assertion: the deadline only bounds a hang).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get fetches http://addr+path and returns status and body.
func get(addr, path string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func mustGet(t testing.TB, addr, path string) string {
	t.Helper()
	code, body, err := get(addr, path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v", path, code, body, err)
	}
	return body
}

func logText(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	if err := ReadLog(context.Background(), dir, false, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

// helperEnv makes the test binary a stand-in for a serve process that
// starts an instance and is then killed with SIGKILL.
const helperEnv = "GANTRY_RUNTIME_TEST_OWNER"

func helperMain() int {
	var dir, image, id, iso string
	_, err := fmt.Sscanf(os.Getenv(helperEnv), "%s %s %s %s", &dir, &image, &id, &iso)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	var opts []Option
	if runtime.Isolation(iso) == runtime.Process {
		opts = append(opts, WithPlainProcesses())
	}
	r, err := New(context.Background(), dir, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	in, err := r.Start(context.Background(), runtime.InstanceSpec{ID: id, Workload: runtime.Workload{Image: image}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	fmt.Printf("%d %s\n", in.Status().PID, in.Addr())
	time.Sleep(time.Hour) // until killed
	return 0
}
