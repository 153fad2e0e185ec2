package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/gantry-ci/gantry/internal/signing"
)

// envPassword returns $COSIGN_PASSWORD and whether it is set (an empty
// value counts as set: an unencrypted-password key).
func envPassword() ([]byte, bool) {
	pw, ok := os.LookupEnv(signing.PasswordEnv)
	return []byte(pw), ok
}

// terminalFd returns the file descriptor of r when it is a terminal.
func terminalFd(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// promptPassword reads a password from the terminal fd without echo,
// prompting on w.
func promptPassword(fd int, w io.Writer, prompt string) ([]byte, error) {
	fmt.Fprint(w, prompt)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	return pw, nil
}

// newKeyPassword is the password for a key being generated:
// $COSIGN_PASSWORD, else typed twice on a terminal, else empty with a
// warning.
func newKeyPassword(in io.Reader, w io.Writer) ([]byte, error) {
	if pw, ok := envPassword(); ok {
		return pw, nil
	}
	fd, ok := terminalFd(in)
	if !ok {
		fmt.Fprintf(w, "warning: %s is not set and standard input is not a terminal; the private key is encrypted with an empty password\n", signing.PasswordEnv)
		return nil, nil
	}
	pw, err := promptPassword(fd, w, "Enter password for private key: ")
	if err != nil {
		return nil, err
	}
	again, err := promptPassword(fd, w, "Enter password for private key again: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pw, again) {
		return nil, errors.New("the passwords do not match")
	}
	return pw, nil
}
