package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		s := be.open(t, t.TempDir())
		ann := &User{Name: "ann", Role: "admin", PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA"}
		if err := s.AddUser(ctx, ann); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUser(ctx, &User{Name: "ann", Role: "viewer"}); !errors.Is(err, ErrExists) {
			t.Errorf("add ann twice: error %v, want ErrExists", err)
		}
		if err := s.AddUser(ctx, &User{Name: "bob", Role: "viewer"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserRole(ctx, "bob", "developer"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserRole(ctx, "nobody", "developer"); !errors.Is(err, ErrNotFound) {
			t.Errorf("role of an unknown user: error %v, want ErrNotFound", err)
		}
		users, err := s.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || users[0].Name != "ann" || users[1].Role != "developer" || users[0].PasswordHash != ann.PasswordHash {
			t.Errorf("Users() = %+v, want ann (admin, with her hash) and bob (developer)", users)
		}

		// A password change ends the user's sessions.
		se := &Session{Hash: "h1", User: "bob", Method: "password", Expires: time.Now().Add(time.Hour)}
		if err := s.AddSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserPassword(ctx, "bob", "new"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionByHash(ctx, "h1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("session after a password change: error %v, want ErrNotFound", err)
		}

		// Removing a user removes its tokens and sessions.
		tok := &APIToken{ID: "t1", User: "bob", Hash: "th1", Label: "laptop"}
		if err := s.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := s.AddToken(ctx, &APIToken{ID: "t2", User: "nobody", Hash: "th2"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("token of an unknown user: error %v, want ErrNotFound", err)
		}
		if err := s.AddToken(ctx, &APIToken{ID: "t1", User: "bob", Hash: "th3"}); !errors.Is(err, ErrExists) {
			t.Errorf("token with a taken id: error %v, want ErrExists", err)
		}
		if err := s.AddSession(ctx, &Session{Hash: "h2", User: "bob", Method: "password", Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveUser(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenByHash(ctx, "th1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("token of a removed user: error %v, want ErrNotFound", err)
		}
		if _, err := s.SessionByHash(ctx, "h2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("session of a removed user: error %v, want ErrNotFound", err)
		}
		if err := s.RemoveUser(ctx, "bob"); !errors.Is(err, ErrNotFound) {
			t.Errorf("remove bob twice: error %v, want ErrNotFound", err)
		}
	})
}

func TestTokensAndSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		s := be.open(t, t.TempDir())
		if err := s.AddUser(ctx, &User{Name: "ann", Role: "admin"}); err != nil {
			t.Fatal(err)
		}
		exp := t0.Add(90 * 24 * time.Hour)
		tok := &APIToken{ID: "t1", User: "ann", Label: "ci", Hash: "abc", Expires: exp}
		if err := s.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := s.AddToken(ctx, &APIToken{ID: "t-agent", User: "ann", Hash: "agent", Location: "eu-west"}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TokenByHash(ctx, "agent"); err != nil || got.Location != "eu-west" {
			t.Errorf("a probe agent's token: %+v, %v; want it bound to eu-west", got, err)
		}
		got, err := s.TokenByHash(ctx, "abc")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "t1" || got.User != "ann" || got.Label != "ci" || !got.Expires.Equal(exp) || !got.Revoked.IsZero() || got.Location != "" {
			t.Errorf("TokenByHash = %+v, want t1 of ann labelled ci expiring %v, not revoked", got, exp)
		}
		if err := s.TouchToken(ctx, "t1", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke an unknown token: error %v, want ErrNotFound", err)
		}
		list, err := s.Tokens(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(list, func(t APIToken) bool { return t.ID == "t1" })
		if len(list) != 2 || i < 0 || list[i].Revoked.IsZero() || !list[i].LastUsed.Equal(t0) {
			t.Errorf("Tokens(ann) = %+v, want t-agent and t1, t1 revoked, last used %v", list, t0)
		}

		now := time.Now()
		for _, se := range []*Session{
			{Hash: "live", User: "ann", Method: "password", Expires: now.Add(time.Hour)},
			{Hash: "old", User: "ann", Method: "password", Expires: now.Add(-time.Second)},
			{Hash: "idle", User: "carol", Method: "oidc", Role: "viewer", Created: now.Add(-2 * time.Hour), Expires: now.Add(time.Hour)},
		} {
			if err := s.AddSession(ctx, se); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.DeleteExpiredSessions(ctx, now, now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("DeleteExpiredSessions removed %d, want 2 (expired, idle)", n)
		}
		if _, err := s.SessionByHash(ctx, "live"); err != nil {
			t.Errorf("live session: %v", err)
		}
		if err := s.DeleteSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionByHash(ctx, "live"); !errors.Is(err, ErrNotFound) {
			t.Errorf("session after logout: error %v, want ErrNotFound", err)
		}
	})
}
