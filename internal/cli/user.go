package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/store"
)

// userAdmin opens the store of the state dir for gantry user and gantry
// token: only the state dir's owner (or root) manages its users, acting
// on the store directly and audited as their operating system login.
func userAdmin(cmd *cobra.Command, g *options.Global) (*auth.Admin, func(), error) {
	a, err := openApp(cmd.Context(), g, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, err
	}
	if err := requireOwner(a.stateDir); err != nil {
		a.Close()
		return nil, nil, err
	}
	return &auth.Admin{Store: a.store, Actor: whoAmI()}, func() { a.Close() }, nil
}

// requireOwner refuses (exit 77) a caller who neither owns dir nor is
// root.
func requireOwner(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); uid != 0 && uint32(uid) != st.Uid {
		return &ExitError{Code: ExitForbidden, Err: fmt.Errorf("the state dir %s belongs to uid %d: only its owner (or root) manages its users and tokens", dir, st.Uid)}
	}
	return nil
}

// userErr maps the errors of user and token management to exit codes:
// bad input 2, an unknown user or token 1 with what was not found.
func userErr(err error) error {
	var weak *auth.WeakPasswordError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &weak), errors.Is(err, store.ErrExists):
		return usageErr(err)
	case errors.Is(err, store.ErrNotFound):
		return failed(err)
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return failed(err)
}

// maxPasswordLen bounds a password read from standard input.
const maxPasswordLen = 1024

// readNewPassword reads a new password: typed twice without echo on a
// terminal, else the first line of standard input. Never from a flag
// (it would show in ps and the shell's history).
func readNewPassword(in io.Reader, w io.Writer, user string) ([]byte, error) {
	if fd, ok := terminalFd(in); ok {
		pw, err := promptPassword(fd, w, "New password for "+user+": ")
		if err != nil {
			return nil, err
		}
		again, err := promptPassword(fd, w, "Again: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, usageErr(errors.New("the passwords do not match"))
		}
		return pw, nil
	}
	r := bufio.NewReaderSize(io.LimitReader(in, maxPasswordLen+2), maxPasswordLen+2)
	line, err := r.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the password from standard input: %w", err)
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) > maxPasswordLen {
		return nil, usageErr(fmt.Errorf("the password on standard input is over %d bytes", maxPasswordLen))
	}
	if len(line) == 0 {
		return nil, usageErr(errors.New("no password: type it at the prompt, or give it on standard input (never as a flag)"))
	}
	return line, nil
}

func newUserCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the local users of gantry serve's login (state dir owner only)",
		Long: `Manage the local users who log in to gantry serve's TCP listener
(gantry serve --listen): their names, roles and passwords. These commands
act on the store of the state dir directly, so only its owner (or root)
runs them; every change is recorded in the audit log. See docs/server.md.`,
	}
	cmd.AddCommand(newUserAddCmd(g), newUserLsCmd(g), newUserRoleCmd(g), newUserRmCmd(g), newUserPasswdCmd(g))
	return cmd
}

func newUserAddCmd(g *options.Global) *cobra.Command {
	o := &options.UserRole{}
	cmd := &cobra.Command{
		Use:   "add NAME --role ROLE",
		Short: "Add a user; the password is typed at a prompt or read from standard input",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Role == "" {
				return usageErr(errors.New("--role is required (viewer, developer, oncall-lead or admin)"))
			}
			role, err := auth.ParseRole(o.Role)
			if err != nil {
				return usageErr(err)
			}
			if err := auth.ValidUserName(args[0]); err != nil {
				return usageErr(err)
			}
			adm, done, err := userAdmin(cmd, g)
			if err != nil {
				return err
			}
			defer done()
			pw, err := readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
			if err := adm.AddUser(cmd.Context(), args[0], role, pw); err != nil {
				return userErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added user %s (%s)\n", args[0], role)
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// userView is a user as gantry user ls shows it: never the hash.
type userView struct {
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	HasPassword bool      `json:"hasPassword"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

func newUserLsCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the users and their roles",
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
			users, err := adm.Store.Users(cmd.Context())
			if err != nil {
				return failed(err)
			}
			views := make([]userView, 0, len(users))
			for _, u := range users {
				views = append(views, userView{Name: u.Name, Role: u.Role, HasPassword: u.PasswordHash != "", Created: u.Created, Updated: u.Updated})
			}
			return printAs(cmd.OutOrStdout(), out.Format, views, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tROLE\tPASSWORD\tCREATED")
				for _, v := range views {
					pw := "no"
					if v.HasPassword {
						pw = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", terminalSafe(v.Name), v.Role, pw, v.Created.Format(time.RFC3339))
				}
			})
		},
	}
	out.AddFlags(cmd.Flags())
	return cmd
}

func newUserRoleCmd(g *options.Global) *cobra.Command {
	return &cobra.Command{
		Use:   "role NAME ROLE",
		Short: "Change a user's role (it applies to the user's next request)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			role, err := auth.ParseRole(args[1])
			if err != nil {
				return usageErr(err)
			}
			return userChange(cmd, g, func(ctx context.Context, adm *auth.Admin) error { return adm.SetRole(ctx, args[0], role) },
				fmt.Sprintf("user %s is now %s", args[0], role))
		},
	}
}

func newUserRmCmd(g *options.Global) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a user with its API tokens and sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userChange(cmd, g, func(ctx context.Context, adm *auth.Admin) error { return adm.RemoveUser(ctx, args[0]) },
				"removed user "+args[0])
		},
	}
}

func newUserPasswdCmd(g *options.Global) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password (prompt or standard input); ends the user's sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := userAdmin(cmd, g)
			if err != nil {
				return err
			}
			defer done()
			if _, err := adm.Store.User(cmd.Context(), args[0]); err != nil {
				return userErr(err)
			}
			pw, err := readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
			if err := adm.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return userErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed; its sessions ended\n", args[0])
			return nil
		},
	}
}

// userChange runs one change as the state dir's owner and prints msg.
func userChange(cmd *cobra.Command, g *options.Global, change func(context.Context, *auth.Admin) error, msg string) error {
	adm, done, err := userAdmin(cmd, g)
	if err != nil {
		return err
	}
	defer done()
	if err := change(cmd.Context(), adm); err != nil {
		return userErr(err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), msg)
	return nil
}
