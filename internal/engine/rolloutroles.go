package engine

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RolloutRoles returns the approval roles of the stages of the pipeline
// data (read from file, named in the answer) that have a blue-green step
// on env, and where they were read; none when no such stage has roles.
// Only the stages' approvals and steps are read; validation checks the
// rest.
func RolloutRoles(data []byte, file, env string) ([]string, string, error) {
	var p struct {
		Stages []struct {
			Name     string `yaml:"name"`
			Approval *struct {
				Roles []string `yaml:"roles"`
			} `yaml:"approval"`
			Steps []struct {
				Uses string    `yaml:"uses"`
				With yaml.Node `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"stages"`
	}
	if err := yaml.Unmarshal(data, &p); err != nil {
		return nil, "", fmt.Errorf("read the stages of %s: %w", file, err)
	}
	var roles, stages []string
	for _, st := range p.Stages {
		guards := false
		for _, s := range st.Steps {
			var with struct {
				Environment string `yaml:"environment"`
			}
			if s.Uses != "blue-green" || s.With.Decode(&with) != nil || with.Environment != env {
				continue
			}
			guards = true
		}
		if !guards || st.Approval == nil || len(st.Approval.Roles) == 0 {
			continue
		}
		stages = append(stages, st.Name)
		roles = append(roles, st.Approval.Roles...)
	}
	slices.Sort(roles)
	roles = slices.Compact(roles)
	if len(roles) == 0 {
		return nil, "", nil
	}
	return roles, fmt.Sprintf("%s (stage %s)", file, strings.Join(stages, ", ")), nil
}
