package sink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Why a delivery did not verify. Deliveries record the reason's text;
// callers of Verify decide with errors.Is.
var (
	ErrNoSignature        = errors.New("no signature header")
	ErrMalformedSignature = errors.New("malformed signature header")
	ErrSignatureMismatch  = errors.New("no signature matches the body")
	ErrTimestampTolerance = errors.New("signature timestamp outside tolerance")
)

// Format checks a signature header's value against a body.
type Format interface {
	// Verify returns nil when value signs body with secret at now, else an
	// error wrapping one of the Err* values above.
	Verify(secret []byte, value string, body []byte, now time.Time) error
}

// Timestamped is the format the example payment service sends (and
// Stripe's): "t=<unix seconds>,v1=<hex HMAC-SHA256>", the HMAC taken over
// "<t>.<body>"; several v1= values may appear (secret rotation), any one
// matching is enough, and t must be within Tolerance of now.
type Timestamped struct {
	Tolerance time.Duration
}

// DefaultTolerance is Timestamped's tolerance when none is set.
const DefaultTolerance = 5 * time.Minute

var _ Format = Timestamped{}

// Verify checks a Timestamped signature in constant time.
func (f Timestamped) Verify(secret []byte, value string, body []byte, now time.Time) error {
	tol := f.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	var ts int64
	var haveTS bool
	var sigs [][]byte
	for part := range strings.SplitSeq(value, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: an element has no '='", ErrMalformedSignature)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: t is not a number", ErrMalformedSignature)
			}
			ts, haveTS = n, true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: v1 is not hex", ErrMalformedSignature)
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveTS || len(sigs) == 0 {
		return fmt.Errorf("%w: want t= and at least one v1=", ErrMalformedSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tol || d < -tol {
		return fmt.Errorf("%w: %s away, tolerance %s", ErrTimestampTolerance, d.Round(time.Second), tol)
	}
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	want := h.Sum(nil)
	ok := 0
	for _, s := range sigs {
		ok |= boolInt(hmac.Equal(s, want))
	}
	if ok == 0 {
		return ErrSignatureMismatch
	}
	return nil
}

// SHA256Hex is GitHub's format: "sha256=<hex HMAC-SHA256 of the body>",
// without a timestamp (so without replay protection).
type SHA256Hex struct{}

var _ Format = SHA256Hex{}

// Verify checks a SHA256Hex signature in constant time.
func (SHA256Hex) Verify(secret []byte, value string, body []byte, _ time.Time) error {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(value), "sha256=")
	if !ok {
		return fmt.Errorf("%w: want sha256=<hex>", ErrMalformedSignature)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrMalformedSignature)
	}
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	if !hmac.Equal(sig, h.Sum(nil)) {
		return ErrSignatureMismatch
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
