package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/gantry-ci/gantry/internal/store"
)

// auditNote is where the handlers under Audit leave the identity they
// found, for the audit entry written when the request ends.
type auditNote struct {
	mu sync.Mutex
	id Identity
	ok bool
}

type auditKey struct{}

// noteIdentity tells the Audit middleware around the request who sent it.
func noteIdentity(ctx context.Context, id Identity) {
	if n, ok := ctx.Value(auditKey{}).(*auditNote); ok {
		n.mu.Lock()
		n.id, n.ok = id, true
		n.mu.Unlock()
	}
}

// auditDetail is the detail of an audit entry: the source address, the
// status answered and how the caller was authenticated, as JSON.
func auditDetail(remote string, status int, method string) string {
	b, _ := json.Marshal(struct {
		Remote string `json:"remote"`
		Status int    `json:"status,omitempty"`
		Method string `json:"auth,omitempty"`
	}{remote, status, method})
	return string(b)
}

// audit writes e, logging (never failing the request) when it cannot.
func (s *Service) audit(ctx context.Context, e *store.AuditEntry) {
	if err := s.store.Audit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("write the audit log", "action", e.Action, "err", err)
	}
}

// auditAnon writes e, an entry without an authenticated caller from
// addr, unless addr has had its share (anonAuditLimit): then it is
// logged only.
func (s *Service) auditAnon(ctx context.Context, addr string, e *store.AuditEntry) {
	if s.anon.take(addr, s.now()) > 0 {
		s.log.Debug("audit entry of an unauthenticated request not stored: too many from this address", "action", e.Action, "subject", e.Subject, "remote", addr)
		return
	}
	s.audit(ctx, e)
}

// Audit records every state-changing request (any method but GET, HEAD
// and OPTIONS) that reaches next in the audit log once it is answered:
// who (the identity Authenticate found, else empty), the method and path
// (action "http.POST", subject the path), the status, the source address
// and how the caller was authenticated. Bodies, headers and query
// strings are never recorded: they may hold credentials. Requests
// without an authenticated caller are recorded up to a rate per source
// address (anonAuditLimit).
func (s *Service) Audit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		note := &auditNote{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), auditKey{}, note)))
		note.mu.Lock()
		id, ok := note.id, note.ok
		note.mu.Unlock()
		e := &store.AuditEntry{Action: "http." + r.Method, Subject: r.URL.Path}
		method := ""
		if ok {
			e.Actor, method = id.Name, string(id.Method)
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		e.Detail = auditDetail(remoteAddr(r), status, method)
		if ok {
			s.audit(r.Context(), e)
		} else {
			s.auditAnon(r.Context(), remoteAddr(r), e)
		}
	})
}

// statusWriter keeps the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the writer underneath
// (flushing streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
