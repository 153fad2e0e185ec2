package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sign makes a Payment-Signature value as the example service does,
// written here from the format: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>")).
func sign(secret string, at time.Time, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(h, "%d.", at.Unix())
	h.Write(body)
	return fmt.Sprintf("t=%d,v1=%s", at.Unix(), hex.EncodeToString(h.Sum(nil)))
}

type fixture struct {
	srv    *httptest.Server
	secret string
	log    *bytes.Buffer
}

func newFixture(t *testing.T, opts ...Option) fixture {
	t.Helper()
	secrets := FileSecrets{Dir: t.TempDir()}
	secret, err := secrets.Secret(t.Context(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	s, err := New(secrets, append([]Option{WithLogger(slog.New(slog.NewTextHandler(&log, nil)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return fixture{srv: srv, secret: secret, log: &log}
}

func (f fixture) post(t *testing.T, path string, body []byte, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (f fixture) deliveries(t *testing.T, query string) []Delivery {
	t.Helper()
	resp, err := http.Get(f.srv.URL + "/sink/staging/deliveries" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET deliveries%s: status %d", query, resp.StatusCode)
	}
	var out struct{ Deliveries []Delivery }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Deliveries
}

const cardBody = `{"type":"payment_intent.succeeded","data":{"card_last4":"4242","note":"BODY-MARKER"}}`

func TestReceive(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	body := []byte(cardBody)
	for _, tc := range []struct {
		name       string
		path       string
		body       []byte
		header     map[string]string
		wantStatus int
		wantKept   bool
		wantReason error
	}{
		{"signed", "/sink/staging/payments", body, map[string]string{"Payment-Signature": sign(f.secret, now, body)}, 204, true, nil},
		{"two v1 values, one matches (rotation)", "/sink/staging/payments", body,
			map[string]string{"Payment-Signature": sign("whsec_old", now, body) + ",v1=" + strings.Split(sign(f.secret, now, body), "v1=")[1]}, 204, true, nil},
		{"wrong secret", "/sink/staging/payments", body, map[string]string{"Payment-Signature": sign("whsec_other", now, body)}, 401, true, ErrSignatureMismatch},
		{"body changed after signing", "/sink/staging/payments", []byte(cardBody + " "), map[string]string{"Payment-Signature": sign(f.secret, now, body)}, 401, true, ErrSignatureMismatch},
		{"missing signature", "/sink/staging/payments", body, nil, 401, true, ErrNoSignature},
		{"old timestamp", "/sink/staging/payments", body, map[string]string{"Payment-Signature": sign(f.secret, now.Add(-10*time.Minute), body)}, 401, true, ErrTimestampTolerance},
		{"future timestamp", "/sink/staging/payments", body, map[string]string{"Payment-Signature": sign(f.secret, now.Add(10*time.Minute), body)}, 401, true, ErrTimestampTolerance},
		{"malformed", "/sink/staging/payments", body, map[string]string{"Payment-Signature": "v1=zz"}, 401, true, ErrMalformedSignature},
		{"oversized body", "/sink/staging/payments", bytes.Repeat([]byte("x"), DefaultMaxBody+1), map[string]string{"Payment-Signature": "t=1,v1=00"}, 413, false, nil},
		{"unknown environment", "/sink/Not..Valid/payments", body, nil, 404, false, nil},
		{"reserved name", "/sink/staging/deliveries", body, nil, 400, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.deliveries(t, ""))
			if got := f.post(t, tc.path, tc.body, tc.header); got != tc.wantStatus {
				t.Fatalf("status: got %d, want %d", got, tc.wantStatus)
			}
			all := f.deliveries(t, "")
			if got := len(all) - before; got != map[bool]int{true: 1, false: 0}[tc.wantKept] {
				t.Fatalf("kept %d deliveries, want kept=%v", got, tc.wantKept)
			}
			if !tc.wantKept {
				return
			}
			d := all[len(all)-1]
			if d.Verified != (tc.wantReason == nil) {
				t.Errorf("verified: got %v (%s), want %v", d.Verified, d.Reason, tc.wantReason == nil)
			}
			if tc.wantReason != nil && !strings.HasPrefix(d.Reason, tc.wantReason.Error()) {
				t.Errorf("reason: got %q, want %q", d.Reason, tc.wantReason)
			}
			if _, ok := d.Headers["Payment-Signature"]; ok {
				t.Errorf("the signature header was kept: %v", d.Headers)
			}
		})
	}
	if strings.Contains(f.log.String(), "BODY-MARKER") {
		t.Errorf("a body reached the log:\n%s", f.log.String())
	}
}

func TestQuery(t *testing.T) {
	f := newFixture(t)
	t0 := time.Now()
	send := func(name, event string, signed bool) {
		body := []byte(`{"type":"` + event + `","id":"evt_1"}`)
		h := map[string]string{"Authorization": "Bearer tok", "Content-Type": "application/json"}
		if signed {
			h["Payment-Signature"] = sign(f.secret, time.Now(), body)
		}
		f.post(t, "/sink/staging/"+name, body, h)
	}
	send("a", "payment_intent.created", true)
	send("a", "payment_intent.succeeded", true)
	send("b/nested", "payment_intent.succeeded", false)
	for _, tc := range []struct {
		query string
		want  []string // name:event of each delivery
	}{
		{"", []string{"a:payment_intent.created", "a:payment_intent.succeeded", "b/nested:payment_intent.succeeded"}},
		{"?event=payment_intent.succeeded", []string{"a:payment_intent.succeeded", "b/nested:payment_intent.succeeded"}},
		{"?event=payment_intent.succeeded&verified=true", []string{"a:payment_intent.succeeded"}},
		{"?name=b/nested", []string{"b/nested:payment_intent.succeeded"}},
		{fmt.Sprintf("?since=%d", t0.Add(-time.Second).UnixMilli()), []string{"a:payment_intent.created", "a:payment_intent.succeeded", "b/nested:payment_intent.succeeded"}},
		{fmt.Sprintf("?since=%d", time.Now().Add(time.Hour).UnixMilli()), nil},
		{"?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var got []string
			for _, d := range f.deliveries(t, tc.query) {
				got = append(got, d.Name+":"+d.Event)
				if _, ok := d.Headers["Authorization"]; ok {
					t.Errorf("Authorization kept: %v", d.Headers)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// the body comes back as JSON the collection can read
	d := f.deliveries(t, "?event=payment_intent.created")[0]
	var body struct{ ID string }
	if err := json.Unmarshal(d.Body, &body); err != nil || body.ID != "evt_1" {
		t.Errorf("body: got %s (%v), want the JSON delivered", d.Body, err)
	}
	resp, err := http.Get(f.srv.URL + "/sink/staging/deliveries?since=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("since=yesterday: got %d, want 400", resp.StatusCode)
	}
}

func TestRingIsBounded(t *testing.T) {
	f := newFixture(t, WithKeep(3))
	for i := range 5 {
		f.post(t, fmt.Sprintf("/sink/staging/e%d", i), []byte(`{}`), nil)
	}
	var got []string
	for _, d := range f.deliveries(t, "") {
		got = append(got, fmt.Sprintf("%d:%s", d.ID, d.Name))
	}
	if want := "3:e2,4:e3,5:e4"; strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// TestRegisteredSecret: a service that makes its own secret per endpoint
// (the example's) has it registered once; deliveries signed with it verify.
func TestRegisteredSecret(t *testing.T) {
	f := newFixture(t)
	put := func(name, secret string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, f.srv.URL+"/sink/staging/"+name, strings.NewReader(`{"secret":"`+secret+`"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, secret string
		want         int
	}{{"run-1", "whsec_endpoint", 201}, {"run-1", "whsec_endpoint", 204}, {"run-1", "whsec_attacker", 409}} {
		if got := put(tc.name, tc.secret); got != tc.want {
			t.Errorf("PUT %s %s: got %d, want %d", tc.name, tc.secret, got, tc.want)
		}
	}
	body := []byte(cardBody)
	if got := f.post(t, "/sink/staging/run-1", body, map[string]string{"Payment-Signature": sign("whsec_endpoint", time.Now(), body)}); got != 204 {
		t.Errorf("delivery signed with the registered secret: got %d, want 204", got)
	}
	if got := f.post(t, "/sink/staging/run-2", body, map[string]string{"Payment-Signature": sign("whsec_endpoint", time.Now(), body)}); got != 401 {
		t.Errorf("the secret of run-1 on run-2: got %d, want 401", got)
	}
}

func TestFileSecrets(t *testing.T) {
	dir := t.TempDir()
	a, err := FileSecrets{Dir: dir}.Secret(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	b, err := FileSecrets{Dir: dir}.Secret(context.Background(), "staging")
	if err != nil || a != b || !strings.HasPrefix(a, SecretPrefix) || len(a) != len(SecretPrefix)+64 {
		t.Errorf("second read: got %q (%v), want %q", b, err, a)
	}
	fi, err := os.Stat(filepath.Join(dir, "staging.secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v mode %v, want 0600", err, fi.Mode())
	}
	if c, _ := (FileSecrets{Dir: dir}).Secret(context.Background(), "prod"); c == a {
		t.Error("prod has staging's secret")
	}
	for _, bad := range []string{"", "../x", "Staging", "a/b", strings.Repeat("a", 64)} {
		if _, err := (FileSecrets{Dir: dir}).Secret(context.Background(), bad); !errors.Is(err, ErrUnknownEnvironment) {
			t.Errorf("Secret(%q): got %v, want ErrUnknownEnvironment", bad, err)
		}
	}
	known := FileSecrets{Dir: dir, Known: func(env string) bool { return env == "staging" }}
	if got, err := known.Secret(context.Background(), "staging"); err != nil || got != a {
		t.Errorf("Secret(staging) with Known: got %q, %v; want %q", got, err, a)
	}
	if _, err := known.Secret(context.Background(), "made-up"); !errors.Is(err, ErrUnknownEnvironment) {
		t.Errorf("Secret(made-up) with Known: got %v, want ErrUnknownEnvironment", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "made-up.secret")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a secret file was made for an unknown environment: %v", err)
	}
	env, err := InstanceEnv(context.Background(), FileSecrets{Dir: dir}, "http://127.0.0.1:9/", "staging")
	if err != nil || env[0] != "GANTRY_SINK_URL=http://127.0.0.1:9/sink/staging" || env[1] != "GANTRY_SINK_SECRET="+a {
		t.Errorf("InstanceEnv: got %v, %v", env, err)
	}
}

func TestSHA256HexFormat(t *testing.T) {
	f := newFixture(t, WithSignature("X-Hub-Signature-256", SHA256Hex{}))
	body := []byte(`{"action":"opened"}`)
	h := hmac.New(sha256.New, []byte(f.secret))
	h.Write(body)
	good := "sha256=" + hex.EncodeToString(h.Sum(nil))
	for _, tc := range []struct {
		sig  string
		want int
	}{{good, 204}, {"sha256=00", 401}, {"sha1=00", 401}} {
		if got := f.post(t, "/sink/staging/gh", body, map[string]string{"X-Hub-Signature-256": tc.sig}); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.sig, got, tc.want)
		}
	}
}

func TestOptionsRefuseBadValues(t *testing.T) {
	for name, o := range map[string]Option{
		"keep 0": WithKeep(0), "max body 0": WithMaxBody(0), "no header": WithSignature("", Timestamped{}),
		"nil format": WithSignature("X", nil), "no event header": WithEventHeader(""), "nil logger": WithLogger(nil),
	} {
		if _, err := New(FileSecrets{Dir: t.TempDir()}, o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzTimestampedVerify(f *testing.F) {
	f.Add("t=1,v1=00", []byte("{}"))
	f.Add("t=,v1=", []byte(""))
	f.Add(",,=,v1=zz,t=99999999999999999999", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if err := (Timestamped{}).Verify([]byte("k"), header, body, time.Unix(1, 0)); err == nil && !strings.Contains(header, "v1=") {
			t.Fatalf("verified %q without a v1", header)
		}
	})
}
