package auth

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/gantry-ci/gantry/internal/monitor"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// userName is what a local user name may look like (an e-mail address
// fits): it appears in the audit log, the approvers file and URLs.
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)

// ValidUserName checks a user name.
func ValidUserName(name string) error {
	if !userName.MatchString(name) {
		return fmt.Errorf("user name %q: want 1 to 64 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Admin manages the local users and API tokens of a store, auditing
// every change as Actor (gantry user and gantry token, run by the state
// dir's owner).
type Admin struct {
	Store *store.Store
	// Actor is who makes the changes (the operating system login).
	Actor string
	// Argon2 hashes new passwords (zero: DefaultArgon2).
	Argon2 Argon2Params
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (a *Admin) params() Argon2Params {
	if a.Argon2 == (Argon2Params{}) {
		return DefaultArgon2
	}
	return a.Argon2
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Admin) audit(ctx context.Context, action, subject, detail string) error {
	if err := a.Store.Audit(ctx, &store.AuditEntry{Actor: a.Actor, Action: action, Subject: subject, Detail: detail}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AddUser creates the local user name with role and password pw, which
// must pass CheckPasswordStrength (a *WeakPasswordError otherwise).
func (a *Admin) AddUser(ctx context.Context, name string, role Role, pw []byte) error {
	if err := ValidUserName(name); err != nil {
		return err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	if err := CheckPasswordStrength(pw, name, "gantry"); err != nil {
		return err
	}
	hash, err := HashPassword(pw, a.params())
	if err != nil {
		return err
	}
	if err := a.Store.AddUser(ctx, &store.User{Name: name, Role: string(role), PasswordHash: hash}); err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	return a.audit(ctx, "user.add", name, "role="+string(role))
}

// SetPassword replaces name's password (checked as AddUser checks it)
// and ends its sessions.
func (a *Admin) SetPassword(ctx context.Context, name string, pw []byte) error {
	if err := CheckPasswordStrength(pw, name, "gantry"); err != nil {
		return err
	}
	hash, err := HashPassword(pw, a.params())
	if err != nil {
		return err
	}
	if err := a.Store.SetUserPassword(ctx, name, hash); err != nil {
		return fmt.Errorf("set the password of %s: %w", name, err)
	}
	return a.audit(ctx, "user.passwd", name, "")
}

// SetRole changes name's role; it applies to its next request.
func (a *Admin) SetRole(ctx context.Context, name string, role Role) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	if err := a.Store.SetUserRole(ctx, name, string(role)); err != nil {
		return fmt.Errorf("set the role of %s: %w", name, err)
	}
	return a.audit(ctx, "user.role", name, "role="+string(role))
}

// RemoveUser deletes name with its tokens and sessions.
func (a *Admin) RemoveUser(ctx context.Context, name string) error {
	if err := a.Store.RemoveUser(ctx, name); err != nil {
		return fmt.Errorf("remove user %s: %w", name, err)
	}
	return a.audit(ctx, "user.remove", name, "")
}

// maxLabel bounds a token's label.
const maxLabel = 100

// TokenOptions are what a new API token is: a label for gantry token
// ls, a lifetime (0: no expiry), and for a probe agent's token the
// monitor location it is bound to.
type TokenOptions struct {
	Label    string
	TTL      time.Duration
	Location string
}

// CreateToken makes an API token for user, valid for ttl (0: no
// expiry), and returns it: the only time it exists outside the caller's
// hands, for the store keeps its hash only.
func (a *Admin) CreateToken(ctx context.Context, user, label string, ttl time.Duration) (string, store.APIToken, error) {
	return a.NewToken(ctx, user, TokenOptions{Label: label, TTL: ttl})
}

// NewToken is CreateToken with every option: a token with a Location
// is a probe agent's (see Authorize).
func (a *Admin) NewToken(ctx context.Context, user string, o TokenOptions) (string, store.APIToken, error) {
	label, ttl := o.Label, o.TTL
	if o.Location != "" {
		if err := monitor.ValidLocation(o.Location); err != nil {
			return "", store.APIToken{}, fmt.Errorf("token location: %w", err)
		}
		if o.Location == runtime.LocationLocal {
			return "", store.APIToken{}, fmt.Errorf("token location %q is the gantry server's own; name the agent's location (eu-west)", o.Location)
		}
	}
	if ttl < 0 {
		return "", store.APIToken{}, fmt.Errorf("token lifetime %s is negative", ttl)
	}
	if len(label) > maxLabel {
		return "", store.APIToken{}, fmt.Errorf("token label is %d bytes, over %d", len(label), maxLabel)
	}
	tok, id, err := newToken()
	if err != nil {
		return "", store.APIToken{}, err
	}
	rec := store.APIToken{ID: id, User: user, Label: label, Hash: secretHash(tok), Location: o.Location}
	if ttl > 0 {
		rec.Expires = a.now().Add(ttl).UTC()
	}
	if err := a.Store.AddToken(ctx, &rec); err != nil {
		return "", store.APIToken{}, fmt.Errorf("create a token for %s: %w", user, err)
	}
	detail := "user=" + user
	if o.Location != "" {
		detail += " location=" + o.Location
	}
	if err := a.audit(ctx, "token.create", rec.ID, detail); err != nil {
		return "", store.APIToken{}, err
	}
	return tok, rec, nil
}

// RevokeToken revokes the token id.
func (a *Admin) RevokeToken(ctx context.Context, id string) error {
	if err := a.Store.RevokeToken(ctx, id); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return a.audit(ctx, "token.revoke", id, "")
}
