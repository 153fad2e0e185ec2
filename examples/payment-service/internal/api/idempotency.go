package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"net/http"

	"github.com/examplepay/payment-service/internal/idempotency"
)

// IdempotencyHeader names the client-chosen key that makes a POST safe to
// retry: the first response (unless it is a 5xx) is stored for the key's
// TTL and replayed, with "Idempotent-Replayed: true", to every retry with
// the same key and the same request. Reusing a key for a different request
// is a 422; a retry while the first request still runs is a 409.
const IdempotencyHeader = "Idempotency-Key"

// captureWriter buffers a response so it can be stored before it is sent.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

func (s *Server) idempotent(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyHeader)
		if key == "" {
			next(w, r)
			return
		}
		if len(key) > 255 {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "idempotency_key_invalid", IdempotencyHeader, "Idempotency-Key must be at most 255 characters")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large", "", "request body too large")
			return
		}
		sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
		fingerprint := hex.EncodeToString(sum[:])
		ctx := r.Context()
		rec, claimed, err := s.d.Idempotency.Begin(ctx, key, fingerprint)
		if err != nil {
			s.d.Log.ErrorContext(ctx, "idempotency store", "err", err)
			writeError(w, http.StatusServiceUnavailable, "api_error", "idempotency_unavailable", "", "cannot check the Idempotency-Key now; retry later")
			return
		}
		if !claimed {
			switch {
			case rec.Fingerprint != fingerprint:
				writeError(w, http.StatusUnprocessableEntity, "idempotency_error", "idempotency_key_reused", IdempotencyHeader,
					"this Idempotency-Key was used with a different request")
			case rec.Pending:
				writeError(w, http.StatusConflict, "idempotency_error", "request_in_progress", IdempotencyHeader,
					"a request with this Idempotency-Key is still being processed; retry later")
			default:
				w.Header().Set("Content-Type", rec.ContentType)
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(rec.Status)
				_, _ = w.Write(rec.Body)
			}
			return
		}

		r.Body = io.NopCloser(bytes.NewReader(body))
		cw := &captureWriter{header: http.Header{}}
		next(cw, r)
		if cw.status == 0 {
			cw.status = http.StatusOK
		}
		// Store with a context that outlives a client that hung up.
		sctx := context.WithoutCancel(ctx)
		if cw.status >= 500 {
			if err := s.d.Idempotency.Release(sctx, key); err != nil {
				s.d.Log.ErrorContext(ctx, "release idempotency key", "err", err)
			}
		} else if err := s.d.Idempotency.Complete(sctx, key, idempotency.Record{
			Fingerprint: fingerprint, Status: cw.status, ContentType: cw.header.Get("Content-Type"), Body: cw.body.Bytes(),
		}); err != nil {
			s.d.Log.ErrorContext(ctx, "store idempotent response", "err", err)
		}
		maps.Copy(w.Header(), cw.header)
		w.WriteHeader(cw.status)
		_, _ = w.Write(cw.body.Bytes())
	}
}
