package kube

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
)

// Errors a deploy or rollback may wrap; check them with errors.Is.
var (
	// ErrForbidden: the API server's authorization (RBAC) denied a request
	// of the kubeconfig's user.
	ErrForbidden = errors.New("kubernetes denied the request (RBAC)")
	// ErrUnauthorized: the API server did not accept the credentials.
	ErrUnauthorized = errors.New("kubernetes did not accept the credentials")
	// ErrCRDMissing: the chart holds a kind the cluster does not serve
	// (its CustomResourceDefinition is not installed).
	ErrCRDMissing = errors.New("kind not served by the cluster")
	// ErrConflict: another install, upgrade or rollback of the release is
	// in progress (or a concurrent writer won the race).
	ErrConflict = errors.New("another operation on the release is in progress")
	// ErrDigestIgnored: the chart's rendered pod templates do not run the
	// admitted digest (the chart reads the image from other values).
	ErrDigestIgnored = errors.New("the chart does not run the admitted digest")
	// ErrNoRelease: the environment has no release yet.
	ErrNoRelease = errors.New("no release")
	// ErrNoRevision: a rollback names a revision the history lacks, or
	// there is no earlier revision to go back to.
	ErrNoRevision = errors.New("no such revision")
)

// explain turns an API server error into one clear message wrapping the
// matching error above (and the original), or returns err unchanged.
// what says what was being done ("upgrade release staging in payments").
func explain(what string, err error) error {
	if err == nil {
		return nil
	}
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("%s: %w: %w (install its CustomResourceDefinition first)", what, ErrCRDMissing, err)
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := st.Status().Message
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w: %s; give the kubeconfig's user a RoleBinding that allows it (Helm keeps the release history in Secrets of the namespace)", what, ErrForbidden, msg)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: %w: %s; check the kubeconfig's user credentials", what, ErrUnauthorized, msg)
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s: %w: %s", what, ErrConflict, msg)
	case apierrors.IsNotFound(err) && st.Status().Details != nil && st.Status().Details.Kind == "namespaces":
		return fmt.Errorf("%s: %s (the namespace must exist, or the user must be allowed to create it)", what, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}
