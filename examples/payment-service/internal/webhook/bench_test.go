package webhook

import (
	"testing"
	"time"
)

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 1024)
	at := time.Unix(1_700_000_000, 0)
	for b.Loop() {
		_ = Sign("whsec_bench", at, body)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 1024)
	at := time.Unix(1_700_000_000, 0)
	h := Sign("whsec_bench", at, body)
	for b.Loop() {
		if err := Verify("whsec_bench", h, body, at, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
