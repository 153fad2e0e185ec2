package webhook

import (
	"math/rand/v2"
	"time"
)

// Backoff computes the delay before a retry: exponential growth from Base,
// capped at Max, with "equal jitter" (a random point in the upper half of
// the exponential step) so that failing endpoints are not hit in lockstep.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
	// Rand returns a float in [0,1); math/rand/v2 when nil.
	Rand func() float64
}

// Delay returns the wait after failed attempt number attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	half := d / 2
	return half + time.Duration(r()*float64(d-half))
}
