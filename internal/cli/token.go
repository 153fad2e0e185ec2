package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/cli/options"
)

func newTokenCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens for the CLI and scripts (state dir owner only)",
		Long: `Manage the API tokens that authenticate to gantry serve's TCP listener
with "Authorization: Bearer TOKEN" (the CLI reads GANTRY_TOKEN or
--token-file). A token acts as its user, with the user's current role.
The token is printed once, at creation; the store keeps only its SHA-256.
Only the state dir's owner (or root) runs these; every change is audited.`,
	}
	cmd.AddCommand(newTokenCreateCmd(g), newTokenLsCmd(g), newTokenRevokeCmd(g))
	return cmd
}

func newTokenCreateCmd(g *options.Global) *cobra.Command {
	o := &options.TokenCreate{}
	cmd := &cobra.Command{
		Use:   "create --user NAME [--expires 90d] [--name LABEL] [--location LOCATION]",
		Short: "Create a token and print it (once) on standard output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			ttl, _ := o.Lifetime()
			adm, done, err := userAdmin(cmd, g)
			if err != nil {
				return err
			}
			defer done()
			tok, rec, err := adm.NewToken(cmd.Context(), o.User, auth.TokenOptions{Label: o.Name, TTL: ttl, Location: o.Location})
			if err != nil {
				return userErr(err)
			}
			exp := "never expires"
			if !rec.Expires.IsZero() {
				exp = "expires " + rec.Expires.Format(time.RFC3339)
			}
			// The token alone on stdout (for $(...) and pipes); what it
			// is on stderr.
			what := ""
			if rec.Location != "" {
				what = ", a probe agent's for location " + rec.Location
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s for %s%s, %s; it is shown only now:\n", rec.ID, o.User, what, exp)
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// tokenView is a token as gantry token ls shows it: never the hash.
type tokenView struct {
	ID       string     `json:"id"`
	User     string     `json:"user"`
	Name     string     `json:"name,omitempty"`
	Location string     `json:"location,omitempty"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"lastUsed,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
	State    string     `json:"state"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func newTokenLsCmd(g *options.Global) *cobra.Command {
	o := &options.TokenList{}
	out := &options.Output{}
	cmd := &cobra.Command{
		Use:   "ls [--user NAME]",
		Short: "List tokens: id, user, label, probe location, expiry, last use, state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			adm, done, err := userAdmin(cmd, g)
			if err != nil {
				return err
			}
			defer done()
			toks, err := adm.Store.Tokens(cmd.Context(), o.User)
			if err != nil {
				return failed(err)
			}
			now := time.Now()
			views := make([]tokenView, 0, len(toks))
			for _, t := range toks {
				state := "active"
				switch {
				case !t.Revoked.IsZero():
					state = "revoked"
				case !t.Expires.IsZero() && !now.Before(t.Expires):
					state = "expired"
				}
				views = append(views, tokenView{ID: t.ID, User: t.User, Name: t.Label, Location: t.Location, Created: t.Created,
					Expires: timePtr(t.Expires), LastUsed: timePtr(t.LastUsed), Revoked: timePtr(t.Revoked), State: state})
			}
			return printAs(cmd.OutOrStdout(), out.Format, views, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tUSER\tNAME\tLOCATION\tEXPIRES\tLAST USED\tSTATE")
				for _, v := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, terminalSafe(v.User), terminalSafe(v.Name), dash(v.Location),
						orDash(v.Expires), orDash(v.LastUsed), v.State)
				}
			})
		},
	}
	o.AddFlags(cmd.Flags())
	out.AddFlags(cmd.Flags())
	return cmd
}

func orDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func newTokenRevokeCmd(g *options.Global) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: it is refused from its next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userChange(cmd, g, func(ctx context.Context, adm *auth.Admin) error { return adm.RevokeToken(ctx, args[0]) },
				"revoked token "+args[0])
		},
	}
}
