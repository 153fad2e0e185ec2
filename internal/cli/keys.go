package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/signing"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage cosign signing keys",
	}
	o := &options.Keys{}
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a cosign key pair (cosign.key, cosign.pub), as `cosign generate-key-pair` does",
		Long: `Write an ECDSA P-256 key pair as cosign.key (encrypted with scrypt and
NaCl secretbox, mode 0600) and cosign.pub into --dir. cosign reads both,
and gantry reads keys cosign generated.

The password comes from $COSIGN_PASSWORD; when it is unset and standard
input is a terminal, it is asked for twice; otherwise it is empty and a
warning says so. Existing key files are never overwritten.

Exit status: 0 written, 2 a key file already exists or bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKeysGenerate(cmd, o) },
	}
	o.AddFlags(gen.Flags())
	cmd.AddCommand(gen)
	return cmd
}

func runKeysGenerate(cmd *cobra.Command, o *options.Keys) error {
	for _, f := range []string{signing.PrivateKeyFile, signing.PublicKeyFile} {
		p := filepath.Join(o.Dir, f)
		if _, err := os.Stat(p); err == nil {
			return usageErr(fmt.Errorf("%s already exists; gantry does not overwrite keys (remove it or choose --dir)", p))
		} else if !errors.Is(err, os.ErrNotExist) {
			return usageErr(fmt.Errorf("check %s: %w", p, err))
		}
	}
	pw, err := newKeyPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
	if err != nil {
		return usageErr(err)
	}
	priv, pub, err := signing.WriteKeyPair(o.Dir, pw)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return usageErr(err)
		}
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Private key written to %s\nPublic key written to %s\n", priv, pub)
	return nil
}
