package spec

import (
	"fmt"
	"slices"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// checkSecretRef enforces that a secret reaches only the steps that list
// it. secrets.NAME may be read in the with: and env: of a step whose
// secrets: lists NAME, and in notify webhooks, which gantry itself uses.
// Everywhere else its value would reach other steps or their logs: the
// pipeline's env goes to every step, and if:, when: and gate: decide what
// every later step sees.
func checkSecretRef(r expression.Ref, sc scope) string {
	if sc.field == fieldNotify {
		return ""
	}
	if len(r) < 2 {
		return "read a secret by its name (secrets.NAME), so that validation can check which step may see it"
	}
	name := r[1]
	switch sc.field {
	case fieldWith, fieldStepEnv:
		if sc.step != nil && slices.ContainsFunc(sc.step.Secrets, func(s yamlx.String) bool { return s.Value == name }) {
			return ""
		}
		stepName := ""
		if sc.step != nil {
			stepName = sc.step.Name
		}
		return fmt.Sprintf("step %q reads secrets.%s but does not list it; add secrets: [%s] to the step (a step sees only the secrets it lists)", stepName, name, name)
	case fieldPipelineEnv:
		return fmt.Sprintf("the pipeline's env reaches every step and may not read secrets.%s; list %s in the secrets: of the steps that need it", name, name)
	case fieldIf:
		return fmt.Sprintf("if: may not read secrets.%s: a condition on a secret tells every reader of the run something about it", name)
	case fieldWhen:
		return fmt.Sprintf("when: may not read secrets.%s: a condition on a secret tells every reader of the run something about it", name)
	case fieldGate:
		return fmt.Sprintf("gate: may not read secrets.%s: a condition on a secret tells every reader of the run something about it", name)
	case fieldTargetURL:
		return fmt.Sprintf("commit_status.target_url is posted to the forge in clear and may not read secrets.%s", name)
	}
	return fmt.Sprintf("secrets.%s may be read only by a step that lists it", name)
}
