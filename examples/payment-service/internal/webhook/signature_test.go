package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret := NewSecret()
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) != len(SecretPrefix)+64 {
		t.Fatalf("NewSecret() = %q", secret)
	}
	body := []byte(`{"id":"evt_1"}`)
	at := time.Unix(1_700_000_000, 0)
	header := Sign(secret, at, body)
	if !strings.HasPrefix(header, "t=1700000000,v1=") {
		t.Fatalf("Sign() = %q", header)
	}
	tests := []struct {
		name    string
		secret  string
		header  string
		body    string
		now     time.Time
		wantErr error
	}{
		{"valid", secret, header, string(body), at.Add(time.Minute), nil},
		{"rotating secret, second v1 matches", secret, "t=1700000000,v1=00ff," + strings.Split(header, ",")[1], string(body), at, nil},
		{"tampered body", secret, header, `{"id":"evt_2"}`, at, ErrSignatureMismatch},
		{"wrong secret", "whsec_other", header, string(body), at, ErrSignatureMismatch},
		{"too old", secret, header, string(body), at.Add(6 * time.Minute), ErrTimestampTooOld},
		{"from the future", secret, header, string(body), at.Add(-6 * time.Minute), ErrTimestampTooOld},
		{"no timestamp", secret, "v1=abcd", string(body), at, ErrMalformedSignature},
		{"no signature", secret, "t=1700000000", string(body), at, ErrMalformedSignature},
		{"bad timestamp", secret, "t=abc,v1=00", string(body), at, ErrMalformedSignature},
		{"bad hex", secret, "t=1700000000,v1=zz", string(body), at, ErrMalformedSignature},
		{"no equals", secret, "garbage", string(body), at, ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, []byte(tt.body), tt.now, 5*time.Minute)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Verify() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// A known-answer vector, computed independently with
// `printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test`, so that
// receivers in other languages can check their implementation.
func TestSignKnownAnswer(t *testing.T) {
	got := Sign("whsec_test", time.Unix(1_700_000_000, 0), []byte("{}"))
	want := "t=1700000000,v1=" + "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
	if err := Verify("whsec_test", got, []byte("{}"), time.Unix(1_700_000_000, 0), time.Minute); err != nil {
		t.Fatalf("Verify(Sign()) = %v", err)
	}
	if got != want {
		t.Fatalf("Sign() = %q, want %q", got, want)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1700000000,v1=00ff")
	f.Add("t=,v1=")
	f.Add(",,,")
	f.Fuzz(func(t *testing.T, header string) {
		_ = Verify("whsec_x", header, []byte("{}"), time.Unix(1_700_000_000, 0), time.Minute)
	})
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0.999999 }}
	low := Backoff{Base: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0 }}
	tests := []struct {
		attempt        int
		wantLo, wantHi time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{4, 4 * time.Second, 8 * time.Second},
		{5, 5 * time.Second, 10 * time.Second},
		{50, 5 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := low.Delay(tt.attempt); got != tt.wantLo {
			t.Errorf("Delay(%d) with rand 0 = %v, want %v", tt.attempt, got, tt.wantLo)
		}
		if got := b.Delay(tt.attempt); got < tt.wantHi-time.Millisecond || got > tt.wantHi {
			t.Errorf("Delay(%d) with rand ~1 = %v, want ~%v", tt.attempt, got, tt.wantHi)
		}
	}
	def := Backoff{Base: time.Second, Max: time.Minute}
	for range 100 {
		if d := def.Delay(3); d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("Delay(3) = %v, want within [2s,4s]", d)
		}
	}
}
