package s3state

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The reasons a rollback is refused; each *RefusedError matches one with
// errors.Is. A refusal changes nothing.
var (
	// ErrNotVersioned: the bucket's versioning is not Enabled.
	ErrNotVersioned = errors.New("bucket versioning is not enabled")
	// ErrNotFound: the bucket, the state object or the version does not exist.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt: a version is not a Terraform state (tfstate.ErrCorrupt).
	ErrCorrupt = errors.New("corrupt state")
	// ErrLineage: the target version belongs to another state lineage.
	ErrLineage = errors.New("lineage mismatch")
	// ErrLocked: a Terraform lock is held on the state.
	ErrLocked = errors.New("state is locked")
	// ErrConcurrent: the current state changed while the rollback ran.
	ErrConcurrent = errors.New("state changed concurrently")
	// ErrAccess: the credentials were refused.
	ErrAccess = errors.New("access denied")
	// ErrNothingToDo: the target is already the current version.
	ErrNothingToDo = errors.New("target is already the current version")
)

// RefusedError is a refusal: Reason is one of the Err* values above,
// Detail says what was found.
type RefusedError struct {
	Reason error
	Detail string
	Err    error // the underlying cause, if any
}

func (e *RefusedError) Error() string {
	s := "refused: " + e.Reason.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches the reason.
func (e *RefusedError) Is(target error) bool { return target == e.Reason }

// Unwrap returns the cause.
func (e *RefusedError) Unwrap() error { return e.Err }

func refuse(reason error, format string, args ...any) *RefusedError {
	return &RefusedError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// classify turns an S3 or DynamoDB error into a refusal when it is one
// (missing thing, refused credentials, failed precondition); other errors
// are returned as they are, wrapped with what.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NotFound", "ResourceNotFoundException":
			return &RefusedError{Reason: ErrNotFound, Detail: what, Err: err}
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
			"InvalidToken", "UnrecognizedClientException", "AccessDeniedException":
			return &RefusedError{Reason: ErrAccess, Detail: what, Err: err}
		case "PreconditionFailed", "ConditionalRequestConflict":
			return &RefusedError{Reason: ErrConcurrent, Detail: what, Err: err}
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return &RefusedError{Reason: ErrNotFound, Detail: what, Err: err}
		case http.StatusForbidden, http.StatusUnauthorized:
			return &RefusedError{Reason: ErrAccess, Detail: what, Err: err}
		case http.StatusPreconditionFailed, http.StatusConflict:
			return &RefusedError{Reason: ErrConcurrent, Detail: what, Err: err}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// notImplemented reports whether the server refused a request feature
// (a conditional write) as not implemented.
func notImplemented(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NotImplemented" {
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotImplemented
}
