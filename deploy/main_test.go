package deploy

import (
	"testing"

	"github.com/gantry-ci/gantry/internal/kubetest"
)

// TestMain stops the Kubernetes test bed that TestInstallUpgradeUninstall
// starts.
func TestMain(m *testing.M) { kubetest.Main(m) }
