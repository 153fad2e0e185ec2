package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of a Unix socket connection, as
// the kernel reports it (SO_PEERCRED) when it connected.
type Peer struct {
	Pid int
	UID int
	GID int
}

type peerKey struct{}

// PeerFromContext returns the peer of the connection a request came on,
// set by the Unix socket server.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// peerContext is an http.Server ConnContext: it records the peer
// credentials of a Unix socket connection in the connection's context.
// Connections of other kinds, or whose credentials cannot be read, carry
// no peer and are refused by RequireUser.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	p, err := peerOf(uc)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func peerOf(uc *net.UnixConn) (Peer, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred *unix.Ucred
		cerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", cerr)
	}
	return Peer{Pid: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// RequireUser lets through only requests whose Unix socket peer runs as
// uid or as root; others get 403 with CodeForbidden, and the refusal is
// logged with the peer's uid and pid.
func RequireUser(uid int, logger *slog.Logger, next http.Handler) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PeerFromContext(r.Context())
		if !ok {
			logger.Warn("refused a request without peer credentials", "method", r.Method, "path", r.URL.Path)
			writeErrorBody(w, http.StatusForbidden, CodeForbidden, "gantry serve: the peer's credentials are unknown")
			return
		}
		if p.UID != uid && p.UID != 0 {
			logger.Warn("refused a request from another user", "peer_uid", p.UID, "peer_pid", p.Pid, "server_uid", uid, "method", r.Method, "path", r.URL.Path)
			writeErrorBody(w, http.StatusForbidden, CodeForbidden, fmt.Sprintf("gantry serve: uid %d may not use the server of uid %d", p.UID, uid))
			return
		}
		next.ServeHTTP(w, r)
	})
}
