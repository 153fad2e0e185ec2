package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the delivery signature:
//
//	Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC key is the endpoint secret and the signed message is the
// timestamp, a dot and the raw request body: "<t>.<body>". Receivers
// recompute it, compare in constant time and reject timestamps older than
// their tolerance (5 minutes is usual) to stop replays. Several v1= values
// may appear while a secret is being rotated; any one matching is enough.
const SignatureHeader = "Payment-Signature"

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "whsec_"

// NewSecret returns a fresh random endpoint secret (256 bits).
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return SecretPrefix + hex.EncodeToString(b)
}

func mac(secret string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the SignatureHeader value for body sent at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := t.Unix()
	return fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(mac(secret, ts, body)))
}

// Verification errors.
var (
	ErrMalformedSignature = errors.New("malformed signature header")
	ErrSignatureMismatch  = errors.New("no signature matches the payload")
	ErrTimestampTooOld    = errors.New("signature timestamp outside tolerance")
)

// Verify checks a SignatureHeader value against body at time now, allowing
// timestamps up to tolerance away from now.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts int64
	var haveTS bool
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: element %q has no '='", ErrMalformedSignature, part)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: timestamp %q: %w", ErrMalformedSignature, v, err)
			}
			ts, haveTS = n, true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: v1 is not hex: %w", ErrMalformedSignature, err)
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveTS || len(sigs) == 0 {
		return fmt.Errorf("%w: need t= and at least one v1=", ErrMalformedSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away", ErrTimestampTooOld, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
