package admissionhook

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/gantry-ci/gantry/internal/admission"
)

// concurrency is how many AdmissionReviews are in flight at once.
const concurrency = 100

// BenchmarkWebhook measures the latency of one admission decision with
// 100 in flight at once, lookups cached by digest (a signed image with
// passing evidence, by tag: the tag is resolved at the registry each
// time, signature and attestations come from the cache; by digest: no
// registry request at all): through the webhook
// (AdmissionReview JSON over HTTPS, as the API server sends it, to
// /mutate) and the same check in-process (Reviewer.Review). It reports
// p50 and p99 in milliseconds.
func BenchmarkWebhook(b *testing.B) {
	f := newFixture(b)
	r, err := admission.New()
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(r, f.policies)
	if err != nil {
		b.Fatal(err)
	}
	for _, image := range []struct{ name, ref string }{{"tag", f.signedTag}, {"digest", f.signed.String()}} {
		benchImage(b, f, r, h, image.name, image.ref)
	}
}

func benchImage(b *testing.B, f *fixture, r *admission.Reviewer, h *Handler, name, image string) {
	pod := admission.PodSpec{Containers: []admission.Container{{Name: "app", Image: image}}}
	check := func(v admission.Verdict) {
		if !v.Allowed {
			b.Fatalf("refused: %v", v.Err())
		}
	}
	b.Run(name+"/in-process", func(b *testing.B) {
		check(func() admission.Verdict { v, _ := r.Review(b.Context(), f.policies, pod); return v }())
		latencies(b, func() error {
			v, _ := r.Review(b.Context(), f.policies, pod)
			check(v)
			return nil
		})
	})
	b.Run(name+"/webhook", func(b *testing.B) {
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = false
		srv.StartTLS()
		defer srv.Close()
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		client := &http.Client{Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: concurrency,
		}}
		body := reviewBody("Pod", "CREATE", "", object("Pod", image))
		pinned := image != f.signed.String()
		send := func() error {
			resp, err := client.Post(srv.URL+PathMutate, "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			var got admissionv1.AdmissionReview
			if err := json.Unmarshal(data, &got); err != nil {
				return err
			}
			if got.Response == nil || !got.Response.Allowed || (len(got.Response.Patch) > 0) != pinned {
				b.Fatalf("answer %s: want allowed, with a patch for a tag only", data)
			}
			return nil
		}
		if err := send(); err != nil {
			b.Fatal(err)
		}
		latencies(b, send)
	})
}

// latencies runs do b.N times over concurrency workers and reports the
// p50 and p99 latency of one call.
func latencies(b *testing.B, do func() error) {
	b.Helper()
	var (
		mu   sync.Mutex
		all  = make([]time.Duration, 0, b.N)
		next = make(chan struct{})
		wg   sync.WaitGroup
	)
	errs := make(chan error, concurrency)
	for range concurrency {
		wg.Go(func() {
			for range next {
				start := time.Now()
				if err := do(); err != nil {
					errs <- err
					return
				}
				d := time.Since(start)
				mu.Lock()
				all = append(all, d)
				mu.Unlock()
			}
		})
	}
	b.ResetTimer()
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[int(float64(len(all)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
