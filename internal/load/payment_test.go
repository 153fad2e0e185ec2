package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startPaymentService builds examples/payment-service and runs it with its
// in-memory backends on a free port.
func startPaymentService(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../../examples/payment-service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "cmd/payment-service")); err != nil {
		t.Skipf("payment-service example not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "payment-service")
	build := exec.Command("go", "build", "-o", bin, "./cmd/payment-service")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build payment-service: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-memory")
	cmd.Env = append(os.Environ(), "ADDR="+addr)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment-service did not become healthy: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWatchPassesPaymentService runs the soak watch against the real
// payment service under steady load: reading one payment intent at a
// constant rate must show no memory, goroutine or connection leak.
func TestWatchPassesPaymentService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the payment service")
	}
	if raceEnabled {
		t.Skip("steady-state verdicts are judged without the race detector")
	}
	base := startPaymentService(t)
	body := bytes.NewBufferString(`{"amount": 1999, "currency": "usd"}`)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/v1/payment_intents", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "soak-test-intent")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var intent struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&intent)
	resp.Body.Close()
	if err != nil || intent.ID == "" {
		t.Fatalf("create intent: status %d, id %q, %v", resp.StatusCode, intent.ID, err)
	}

	res := run(t, Config{
		Requests: []Request{{URL: fmt.Sprintf("%s/v1/payment_intents/%s", base, intent.ID)}},
		Rate:     200, Duration: 5 * time.Second,
		Watch: &WatchConfig{URL: base + "/metrics", Interval: 100 * time.Millisecond,
			Watch: []string{WatchMemory, WatchGoroutines, WatchConnections}},
	})
	for w, v := range verdicts(res) {
		t.Logf("%s: %s", w, v.Reason)
		if !v.OK {
			t.Errorf("%s verdict failed on the payment service under steady load: %s", w, v.Reason)
		}
	}
	if res.Watch.Samples < 30 {
		t.Errorf("samples = %d, want about 50", res.Watch.Samples)
	}
	if err := res.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}
