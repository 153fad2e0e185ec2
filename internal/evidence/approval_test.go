package evidence

import (
	"errors"
	"testing"
)

func TestRequireApprovalIsNotBuilt(t *testing.T) {
	for _, require := range [][]string{{"approval"}, {"tests", "approval"}} {
		if _, err := Check(nil, require); !errors.Is(err, ErrNotBuilt) {
			t.Errorf("Check(--require %v): error %v, want ErrNotBuilt", require, err)
		}
	}
	if err := CheckBuilt([]string{"tests", "sbom"}); err != nil {
		t.Errorf("CheckBuilt(tests, sbom): %v, want nil", err)
	}
}
