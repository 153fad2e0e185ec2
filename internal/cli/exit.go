package cli

import (
	"errors"
	"fmt"
)

// Exit codes shared by every command.
const (
	ExitOK     = 0
	ExitFailed = 1 // a gate, step or check failed
	ExitUsage  = 2 // bad usage or bad configuration
	// ExitDamaged: gantry's own state is damaged (the run history database
	// fails its check on open); nothing ran.
	ExitDamaged = 3
	// ExitWaiting: the run waits for an approval (gantry run, gantry
	// approve when the resumed run reaches another approval); sysexits'
	// EX_TEMPFAIL, "try again later".
	ExitWaiting = 75
	// ExitForbidden: the caller may not take this decision (gantry
	// approve/reject without the role); sysexits' EX_NOPERM.
	ExitForbidden = 77
)

// ExitError carries an exit code to main. Its message, if any, is printed.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageErr marks err as bad usage or bad configuration (exit 2).
func usageErr(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// failed marks err as a failed gate, step or check (exit 1).
func failed(err error) error { return &ExitError{Code: ExitFailed, Err: err} }

// Code maps an error returned by a command to the process exit code.
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitFailed
}
