package serve

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// ErrNotRunning is returned by Dial when no serve process listens for the
// state dir.
var ErrNotRunning = errors.New("gantry serve is not running")

// Error codes carried by the API's JSON errors. A client maps each back
// to the error the server's deployer returned, so errors.Is works across
// the socket.
const (
	CodeDeployInProgress = "deploy_in_progress" // runtime.ErrDeployInProgress, 409
	CodeNotReady         = "not_ready"          // runtime.ErrNotReady, 422
	CodeAdmission        = "admission_refused"  // runtime.ErrAdmission, 403
	CodeNotFound         = "not_found"          // store.ErrNotFound, 404
	CodeInvalidRequest   = "invalid_request"    // runtime.ErrInvalidRequest, 400
	CodeUnavailable      = "unavailable"        // runtime.ErrClosed (serve stopping), 503
	CodeUnsupported      = "unsupported"        // errors.ErrUnsupported, 501
	CodeNoRollout        = "no_rollout"         // runtime.ErrNoRollout, 404
	CodeRolloutState     = "rollout_state"      // runtime.ErrRolloutState, 409
	CodeBadRequest       = "bad_request"        // malformed request, 400
	CodeTooLarge         = "too_large"          // body over the limit, 413
	CodeForbidden        = "forbidden"          // peer or role not allowed, 403
	CodeUnauthenticated  = "unauthenticated"    // auth.ErrUnauthenticated: no identity, 401
	CodeMethodNotAllowed = "method_not_allowed" // no such method on the path, 405
	CodeInternal         = "internal"           // anything else, 500
)

// sentinels maps codes to the errors they stand for, in the order a
// server error is checked against them.
var sentinels = []struct {
	code   string
	status int
	err    error
}{
	{CodeDeployInProgress, http.StatusConflict, runtime.ErrDeployInProgress},
	{CodeNoRollout, http.StatusNotFound, runtime.ErrNoRollout},
	{CodeRolloutState, http.StatusConflict, runtime.ErrRolloutState},
	{CodeNotReady, http.StatusUnprocessableEntity, runtime.ErrNotReady},
	{CodeAdmission, http.StatusForbidden, runtime.ErrAdmission},
	{CodeNotFound, http.StatusNotFound, store.ErrNotFound},
	{CodeInvalidRequest, http.StatusBadRequest, runtime.ErrInvalidRequest},
	{CodeUnavailable, http.StatusServiceUnavailable, runtime.ErrClosed},
	{CodeUnsupported, http.StatusNotImplemented, errors.ErrUnsupported},
}

// ErrBadRequest is what a client's error wraps when the server found its
// request malformed (CodeBadRequest, CodeTooLarge).
var ErrBadRequest = errors.New("bad request")

// ErrForbidden is what a client's error wraps when the server refused it
// (CodeForbidden).
var ErrForbidden = errors.New("refused by gantry serve")

// apiError is the body of every error response.
type apiError struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify returns the code and HTTP status for an error of the deployer.
func classify(err error) (code string, status int) {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code, s.status
		}
	}
	return CodeInternal, http.StatusInternalServerError
}

// APIError is an error answer of the serve API as the client sees it. It
// wraps the sentinel its code stands for.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap returns the sentinel errors of the code, if any: an invalid
// request is both runtime.ErrInvalidRequest and ErrBadRequest.
func (e *APIError) Unwrap() []error {
	var errs []error
	for _, s := range sentinels {
		if s.code == e.Code {
			errs = append(errs, s.err)
		}
	}
	switch e.Code {
	case CodeBadRequest, CodeTooLarge, CodeInvalidRequest:
		errs = append(errs, ErrBadRequest)
	case CodeForbidden:
		errs = append(errs, ErrForbidden)
	case CodeUnauthenticated:
		// Exit 77 in the CLI, like a refusal.
		errs = append(errs, auth.ErrUnauthenticated, ErrForbidden)
	case CodeNotApprover:
		errs = append(errs, ErrForbidden, engine.ErrForbidden)
	case CodeNoPendingApproval:
		errs = append(errs, engine.ErrNoPendingApproval)
	}
	return errs
}

func newAPIError(status int, body errorBody) *APIError {
	msg := body.Message
	if msg == "" {
		msg = fmt.Sprintf("gantry serve: %d %s", status, http.StatusText(status))
	}
	return &APIError{Status: status, Code: body.Code, Message: msg}
}
