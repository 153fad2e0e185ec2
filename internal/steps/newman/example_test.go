package newman

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/sink"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestExampleCollection runs the example's Postman collection with the
// real newman against the example payment service (built from
// examples/payment-service, in memory mode) and a real webhook sink: the
// whole flow, create → confirm → webhook delivered to the sink and signed.
func TestExampleCollection(t *testing.T) {
	requireNewman(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	example, err := filepath.Abs("../../../examples/payment-service")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "payment-service")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "./cmd/payment-service")
	build.Dir = example
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the example service: %v\n%s", err, out)
	}

	secrets := sink.FileSecrets{Dir: t.TempDir()}
	s, err := sink.New(secrets)
	if err != nil {
		t.Fatal(err)
	}
	sinkSrv := httptest.NewServer(s)
	t.Cleanup(sinkSrv.Close)

	port := freePort(t)
	svc := proc.Command(t.Context(), bin)
	svc.Env = append(os.Environ(), "STORAGE=memory", "PORT="+strconv.Itoa(port), "WEBHOOK_BACKOFF_BASE=100ms", "LOG_LEVEL=warn")
	var svcLog strings.Builder
	svc.Stdout, svc.Stderr = &svcLog, &svcLog
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = svc.Process.Signal(os.Interrupt)
		_ = svc.Wait()
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitReady(t, base+"/healthz")

	st, err := Kind.New(steptest.Inputs{YAML: "{collection: tests/postman/payment-flow.json, base_url: " + base +
		", vars: {sinkUrl: " + sinkSrv.URL + "/sink/staging" + "}, timeout_request: 10s}"})
	if err != nil {
		t.Fatal(err)
	}
	env, log, _ := steptest.NewEnv(t, example, "staging", "payment-flow")
	res, err := st.Run(t.Context(), env)
	if err != nil {
		t.Fatalf("newman on the example collection: %v\n%s\nservice log:\n%s", err, log, svcLog.String())
	}
	if res.Outputs["failures"] != 0 || res.Outputs["assertions"].(int) < 20 {
		t.Errorf("outputs: got %v, want no failures and the whole collection's assertions", res.Outputs)
	}
	verified := true
	got := s.Deliveries("staging", sink.Query{Event: "payment_intent.succeeded", Verified: &verified})
	if len(got) != 1 || !strings.HasPrefix(got[0].Name, "newman-") {
		t.Errorf("sink deliveries of payment_intent.succeeded: got %+v, want one verified delivery to a newman- endpoint", got)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitReady polls url until it answers 200 (the service starts in well
// under a second; the bound only stops a broken build from hanging).
func waitReady(t *testing.T, url string) {
	t.Helper()
	for range 200 {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}
