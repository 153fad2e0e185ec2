// Package builtin lists gantry's built-in step kinds and services. It is the
// one place that names them; the engine receives the lists.
package builtin

import (
	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/service/postgres"
	"github.com/gantry-ci/gantry/internal/service/redis"
	"github.com/gantry-ci/gantry/internal/service/sqs"
	"github.com/gantry-ci/gantry/internal/step"
	analysisstep "github.com/gantry-ci/gantry/internal/steps/analysis"
	"github.com/gantry-ci/gantry/internal/steps/bluegreen"
	"github.com/gantry-ci/gantry/internal/steps/commitlint"
	"github.com/gantry-ci/gantry/internal/steps/deploy"
	"github.com/gantry-ci/gantry/internal/steps/golangcilint"
	"github.com/gantry-ci/gantry/internal/steps/gotest"
	"github.com/gantry-ci/gantry/internal/steps/helmlint"
	"github.com/gantry-ci/gantry/internal/steps/helmtemplate"
	"github.com/gantry-ci/gantry/internal/steps/imagebuild"
	"github.com/gantry-ci/gantry/internal/steps/imagepush"
	"github.com/gantry-ci/gantry/internal/steps/infrarollback"
	"github.com/gantry-ci/gantry/internal/steps/k6"
	"github.com/gantry-ci/gantry/internal/steps/kubeconform"
	"github.com/gantry-ci/gantry/internal/steps/licensecheck"
	"github.com/gantry-ci/gantry/internal/steps/loadtest"
	"github.com/gantry-ci/gantry/internal/steps/newman"
	"github.com/gantry-ci/gantry/internal/steps/nextversion"
	saststep "github.com/gantry-ci/gantry/internal/steps/sast"
	sbomstep "github.com/gantry-ci/gantry/internal/steps/sbom"
	"github.com/gantry-ci/gantry/internal/steps/shell"
	signstep "github.com/gantry-ci/gantry/internal/steps/sign"
	"github.com/gantry-ci/gantry/internal/steps/terraformfmt"
	"github.com/gantry-ci/gantry/internal/steps/tflint"
	"github.com/gantry-ci/gantry/internal/steps/vulnscan"
)

// Kinds returns every built-in step kind.
func Kinds() []step.Kind {
	return []step.Kind{
		// Each step-kind package adds its Kind here, one line each.
		gotest.Kind,
		imagebuild.Kind,
		imagepush.Kind,
		loadtest.Kind,
		analysisstep.Kind,
		k6.Kind,
		golangcilint.Kind,
		terraformfmt.Kind,
		tflint.Kind,
		kubeconform.Kind,
		helmlint.Kind,
		helmtemplate.Kind,
		commitlint.Kind,
		nextversion.Kind,
		saststep.Kind,
		licensecheck.Kind,
		vulnscan.Kind,
		sbomstep.Kind,
		signstep.Kind,
		newman.Kind,
		infrarollback.Kind, infrarollback.SnapshotKind,
	}
}

// Deploy returns the deploy kind, which deploys through connect (the
// client of the `gantry serve` process). It is not in Kinds: the CLI adds
// it when it has a way to reach an environment controller, so a build
// without one refuses `uses: deploy` when the pipeline is validated
// rather than when the step runs.
func Deploy(connect deploy.Connect) step.Kind { return deploy.NewKind(connect) }

// BlueGreen returns the blue-green kind, which rolls out through
// connect (the client of the `gantry serve` process); like Deploy, the
// CLI adds it when it can reach an environment controller.
func BlueGreen(connect bluegreen.Connect) step.Kind { return bluegreen.NewKind(connect) }

// Script returns the script kind, which runs `run:` steps. It is not a
// `uses:` kind: the engine builds it from a step's run:, shell: and
// inputs: (engine.WithScriptKind).
func Script() step.Kind { return shell.Kind }

// Services returns the services a step can ask for with `services:`.
func Services() map[string]service.Provider {
	return map[string]service.Provider{
		// Each service adds itself here, one line each.
		"postgres": postgres.Provider{},
		"redis":    redis.Provider{},
		"sqs":      sqs.Provider{},
	}
}
