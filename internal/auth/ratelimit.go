package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: Burst attempts at once, refilled one
// every Every.
type RateLimit struct {
	Every time.Duration
	Burst int
}

// The default login limits: 5 attempts per user name at once then one
// every 12 s (5 a minute); 20 per source address then one every 3 s.
var (
	DefaultUserLimit = RateLimit{Every: 12 * time.Second, Burst: 5}
	DefaultAddrLimit = RateLimit{Every: 3 * time.Second, Burst: 20}
)

// anonAuditLimit bounds the audit entries of requests without an
// authenticated caller per source address (refused API calls, throttled
// logins): 30 at once, then one every 2 s. Past it they are only
// logged, so that nobody fills the store by knocking.
var anonAuditLimit = RateLimit{Every: 2 * time.Second, Burst: 30}

// maxBuckets bounds the buckets a limiter keeps: past it, full buckets
// (which limit nothing) are dropped.
const maxBuckets = 10000

// limiter holds one token bucket per key (a user name, an address).
// Its memory is bounded: maxBuckets, and full buckets are forgotten.
type limiter struct {
	mu      sync.Mutex
	limit   RateLimit
	buckets map[string]*rate.Limiter
}

func newLimiter(l RateLimit) *limiter {
	return &limiter{limit: l, buckets: map[string]*rate.Limiter{}}
}

// take takes one attempt for key at now: zero when allowed, else how
// long until the next attempt would be.
func (l *limiter) take(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = rate.NewLimiter(rate.Every(l.limit.Every), l.limit.Burst)
		l.buckets[key] = b
	}
	if b.AllowN(now, 1) {
		return 0
	}
	r := b.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	if d <= 0 {
		d = l.limit.Every
	}
	return d
}

// sweep drops buckets that are full again; when every bucket is in use,
// the map is reset rather than grown (an attacker spraying addresses
// then meets fresh buckets, still limited per user name).
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.limit.Burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
