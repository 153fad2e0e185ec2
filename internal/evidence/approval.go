package evidence

import (
	"errors"
	"fmt"
	"slices"
)

// GateApproval is the gate of a granted manual approval. Approvals are
// decided and recorded (gantry approve, the run store) but not yet
// attested on the image, so a requirement of it can never be met.
const GateApproval = "approval"

// ErrNotBuilt is returned for a gate gantry knows of but does not attest
// yet: requiring it must fail, never pass.
var ErrNotBuilt = errors.New("not built yet")

// CheckBuilt fails, wrapping ErrNotBuilt, when require names a gate that
// gantry does not attest yet.
func CheckBuilt(require []string) error {
	if slices.Contains(require, GateApproval) {
		return fmt.Errorf("gate %q: approval evidence is %w: approvals are recorded in the run history (who, when, digest, evidence shown) but not attested on images, so no image can satisfy --require %s",
			GateApproval, ErrNotBuilt, GateApproval)
	}
	return nil
}
