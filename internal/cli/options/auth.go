package options

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/gantry-ci/gantry/internal/monitor"
)

// UserRole is the --role flag of gantry user add.
type UserRole struct {
	Role string
}

// AddFlags registers --role.
func (o *UserRole) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Role, "role", "", "the user's role: viewer, developer, oncall-lead or admin (required)")
}

// TokenCreate are the flags of gantry token create.
type TokenCreate struct {
	User     string
	Expires  string
	Name     string
	Location string
}

// AddFlags registers --user, --expires, --name and --location.
func (o *TokenCreate) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.User, "user", "", "the user the token acts as (required)")
	fs.StringVar(&o.Expires, "expires", "90d", "lifetime: a number of days (90d), a Go duration (12h) or never")
	fs.StringVar(&o.Name, "name", "", "a label to recognise the token by in gantry token ls")
	fs.StringVar(&o.Location, "location", "", "make a probe agent's token, bound to this monitor location (eu-west): it may report monitors from there and do nothing else")
}

// Lifetime returns the --expires duration; 0 means never.
func (o *TokenCreate) Lifetime() (time.Duration, error) {
	return ParseLifetime(o.Expires)
}

// Validate checks --user and --expires.
func (o *TokenCreate) Validate() error {
	if o.User == "" {
		return errors.New("--user is required")
	}
	if o.Location != "" {
		if err := monitor.ValidLocation(o.Location); err != nil {
			return fmt.Errorf("--location: %w", err)
		}
	}
	_, err := o.Lifetime()
	return err
}

// ParseLifetime reads 90d, 12h, 30m or never (0).
func ParseLifetime(s string) (time.Duration, error) {
	if s == "never" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("--expires %q: want a number of days from 1 to 3650 (90d), a duration (12h) or never", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want a number of days (90d), a positive duration (12h) or never", s)
	}
	return d, nil
}

// TokenList are the flags of gantry token ls.
type TokenList struct {
	User string
}

// AddFlags registers --user.
func (o *TokenList) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.User, "user", "", "list only this user's tokens")
}

// ServeListen are the TCP listener flags of gantry serve.
type ServeListen struct {
	Listen  string
	TLSCert string
	TLSKey  string
	// Origins are the browser origins (scheme://host[:port]) the server
	// is reached at, when a proxy in front changes the Host.
	Origins     []string
	SessionIdle time.Duration
	SessionMax  time.Duration
}

// AddFlags registers --listen, --tls-cert, --tls-key, --origin,
// --session-idle and --session-max.
func (o *ServeListen) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", "", "also serve the API, login and webhooks on this TCP address (HOST:PORT); without TLS only a loopback address")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate (chain) of the TCP listener")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of the TCP listener")
	fs.StringSliceVar(&o.Origins, "origin", nil, "origin browsers reach the server at (https://ci.example.com), when a proxy changes the Host; repeatable")
	fs.DurationVar(&o.SessionIdle, "session-idle", 30*time.Minute, "log a browser session out after this long unused")
	fs.DurationVar(&o.SessionMax, "session-max", 12*time.Hour, "log a browser session out this long after login")
}

// Validate checks that the TLS files go together and the other flags
// need --listen.
func (o *ServeListen) Validate() error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.Listen == "" && (o.TLSCert != "" || len(o.Origins) > 0) {
		return errors.New("--tls-cert, --tls-key and --origin need --listen")
	}
	if o.SessionIdle <= 0 || o.SessionMax <= 0 {
		return errors.New("--session-idle and --session-max must be positive")
	}
	return nil
}

// OIDC are the single sign-on flags of gantry serve.
type OIDC struct {
	Issuer           string
	ClientID         string
	ClientSecretFile string
	RedirectURL      string
	UserClaim        string
	RoleClaim        string
	RoleMap          string
	DefaultRole      string
}

// AddFlags registers the --oidc-* flags.
func (o *OIDC) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Issuer, "oidc-issuer", "", "OpenID Connect issuer URL: enables single sign-on at /auth/oidc/login")
	fs.StringVar(&o.ClientID, "oidc-client-id", "", "the client id registered at the issuer")
	fs.StringVar(&o.ClientSecretFile, "oidc-client-secret-file", "", "file holding the client secret (never a flag: it would show in ps)")
	fs.StringVar(&o.RedirectURL, "oidc-redirect-url", "", "this server's callback as registered at the issuer (https://HOST/auth/oidc/callback)")
	fs.StringVar(&o.UserClaim, "oidc-user-claim", "", "claim that names the user (default preferred_username, else email, else sub)")
	fs.StringVar(&o.RoleClaim, "oidc-role-claim", "groups", "claim whose values map to roles")
	fs.StringVar(&o.RoleMap, "oidc-role-map", "", "claim values to roles: VALUE=ROLE,VALUE=ROLE (the strongest match wins)")
	fs.StringVar(&o.DefaultRole, "oidc-default-role", "", "role of a user no claim value maps (empty: refuse the login)")
}

// Enabled reports whether single sign-on is asked for.
func (o *OIDC) Enabled() bool { return o.Issuer != "" }

// Validate checks that the required OIDC flags come together.
func (o *OIDC) Validate(listen string) error {
	if !o.Enabled() {
		if o.ClientID != "" || o.ClientSecretFile != "" || o.RedirectURL != "" || o.RoleMap != "" || o.DefaultRole != "" {
			return errors.New("the --oidc-* flags need --oidc-issuer")
		}
		return nil
	}
	if listen == "" {
		return errors.New("--oidc-issuer needs --listen")
	}
	if o.ClientID == "" || o.ClientSecretFile == "" || o.RedirectURL == "" {
		return errors.New("--oidc-issuer needs --oidc-client-id, --oidc-client-secret-file and --oidc-redirect-url")
	}
	return nil
}
