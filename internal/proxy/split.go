package proxy

import (
	"net/http"
	"sync/atomic"
)

// Split sends a subset of a proxy's requests to another handler — green's
// proxy before a blue/green promotion — and the rest to the proxy's own
// backend set: the requests carrying Header with Value (any value when
// Value is empty), or, when Header is empty, Percent of them, spread
// evenly (of every 100 requests in a row, Percent go to To).
//
// A Split is immutable once set; SetSplit replaces or removes it with one
// atomic store, so removing it sends every request that starts afterwards
// back to the proxy's own set at once.
type Split struct {
	Header  string
	Value   string
	Percent int
	To      http.Handler

	n atomic.Uint64
}

// Match says whether r goes to s.To.
func (s *Split) Match(r *http.Request) bool {
	if s.To == nil {
		return false
	}
	if s.Header != "" {
		vs, ok := r.Header[http.CanonicalHeaderKey(s.Header)]
		if !ok {
			return false
		}
		if s.Value == "" {
			return true
		}
		for _, v := range vs {
			if v == s.Value {
				return true
			}
		}
		return false
	}
	switch {
	case s.Percent <= 0:
		return false
	case s.Percent >= 100:
		return true
	}
	// Request n goes to To when the running share floor(n*Percent/100)
	// steps up: exactly Percent of every 100 consecutive requests.
	n := s.n.Add(1)
	pct := uint64(s.Percent)
	return n*pct/100 != (n-1)*pct/100
}

// SetSplit makes s the proxy's split (nil: none, every request goes to
// the proxy's own backends).
func (p *Proxy) SetSplit(s *Split) {
	p.split.Store(s)
	p.log.Info("proxy split", "environment", p.name, "on", s != nil)
}

// CurrentSplit is the split in force (nil if none).
func (p *Proxy) CurrentSplit() *Split { return p.split.Load() }

// serveSplit serves r through the split when it matches; false when r
// stays with the proxy's own backends.
func (p *Proxy) serveSplit(w http.ResponseWriter, r *http.Request) bool {
	s := p.split.Load()
	if s == nil || !s.Match(r) {
		return false
	}
	s.To.ServeHTTP(w, r)
	return true
}
