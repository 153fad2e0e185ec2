package admission

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Validate is the part of a validate rule gantry enforces: patterns over
// the images of a pod's containers, as registry restrictions and digest
// pinning write them. The pod passes when it matches one of Patterns
// (pattern gives one, anyPattern several).
type Validate struct {
	Message  string
	Patterns []PodPattern
	// Action overrides the policy's when validate sets failureAction.
	Action Action
	Line   int
}

// PodPattern holds the image pattern of each container list it names.
type PodPattern struct {
	Lists []ListPattern
}

// ListPattern says that every container of Field (containers,
// initContainers, ephemeralContainers) must have an image matching
// Image. With Optional (the =() anchor) a pod without the list passes.
type ListPattern struct {
	Field    string
	Optional bool
	Image    string
	Line     int
}

// containerLists are the pod spec fields holding containers.
var containerLists = []string{"containers", "initContainers", "ephemeralContainers"}

func (d *decoder) validate(n *yaml.Node, what string, r *Rule) *Validate {
	f := d.fields(n, what, map[string]fieldKind{
		"message": read, "pattern": read, "anyPattern": read, "failureAction": read,
		"deny": read, "foreach": read, "podSecurity": read, "cel": read, "manifests": read, "assert": read,
		"failureActionOverrides": ignored, "allowExistingViolations": ignored,
	}, nil)
	if f == nil {
		return nil
	}
	v := &Validate{Message: d.str(f["message"], what+".message"), Line: n.Line}
	if f["failureAction"] != nil {
		v.Action = d.action(f["failureAction"], what+".failureAction", "")
	}
	for _, k := range []string{"deny", "foreach", "podSecurity", "cel", "manifests", "assert"} {
		if f[k] != nil {
			r.NotEnforced = append(r.NotEnforced, "validate."+k)
		}
	}
	var notEnforced []string
	if pn := f["pattern"]; pn != nil {
		p, ok := d.podPattern(pn, what+".pattern", &notEnforced)
		if ok {
			v.Patterns = append(v.Patterns, p)
		}
		r.NotEnforced = append(r.NotEnforced, notEnforced...)
	}
	if an := f["anyPattern"]; an != nil {
		var ps []PodPattern
		complete := true
		for i, pn := range d.list(an, what+".anyPattern") {
			var ne []string
			p, ok := d.podPattern(pn, fmt.Sprintf("%s.anyPattern[%d]", what, i), &ne)
			if !ok || len(ne) > 0 {
				// One alternative gantry cannot evaluate fully could be
				// the one a pod meets: enforcing the others would refuse
				// pods Kyverno admits.
				complete = false
			}
			ps = append(ps, p)
		}
		if complete && len(ps) > 0 {
			v.Patterns = append(v.Patterns, ps...)
		} else {
			r.NotEnforced = append(r.NotEnforced, "validate.anyPattern (an alternative checks more than container images)")
		}
	}
	if len(v.Patterns) == 0 {
		return nil
	}
	return v
}

// podPattern reads the image patterns of a validate pattern written for a
// Pod (spec.containers) or for a pod controller (spec.template.spec, or
// spec.jobTemplate.spec.template.spec for a CronJob). Parts it does not
// enforce are added to notEnforced.
func (d *decoder) podPattern(n *yaml.Node, what string, notEnforced *[]string) (PodPattern, bool) {
	var p PodPattern
	// The pod spec's place: the longest of these paths the pattern has.
	paths := [][]string{
		{"spec", "jobTemplate", "spec", "template", "spec"},
		{"spec", "template", "spec"},
		{"spec"},
	}
	var pod *yaml.Node
	var path []string
	for _, try := range paths {
		if c := descend(n, try); c != nil {
			pod, path = c, try
			break
		}
	}
	if pod == nil {
		*notEnforced = append(*notEnforced, "validate pattern (no spec)")
		return p, false
	}
	// Keys beside the path are not enforced.
	at, where := n, "pattern"
	for _, step := range path {
		for _, kv := range pairs(at) {
			if kv[0].Value != step {
				*notEnforced = append(*notEnforced, fmt.Sprintf("validate %s.%s", where, kv[0].Value))
			}
		}
		at, where = child(at, step), where+"."+step
	}
	for _, kv := range pairs(pod) {
		k, v := kv[0], kv[1]
		name, anchor := anchored(k.Value)
		if !isContainerList(name) || (anchor != "" && anchor != "=") {
			*notEnforced = append(*notEnforced, fmt.Sprintf("validate %s.%s", where, k.Value))
			continue
		}
		elems := d.list(v, what+"."+k.Value)
		if len(elems) != 1 || elems[0].Kind != yaml.MappingNode {
			*notEnforced = append(*notEnforced, fmt.Sprintf("validate %s.%s (gantry reads a list of one container pattern)", where, k.Value))
			continue
		}
		image, found := "", false
		for _, ckv := range pairs(elems[0]) {
			cname, canchor := anchored(ckv[0].Value)
			if cname == "image" && (canchor == "" || canchor == "=") && ckv[1].Kind == yaml.ScalarNode {
				image, found = ckv[1].Value, true
				continue
			}
			*notEnforced = append(*notEnforced, fmt.Sprintf("validate %s.%s[].%s", where, k.Value, ckv[0].Value))
		}
		if found {
			p.Lists = append(p.Lists, ListPattern{Field: name, Optional: anchor == "=", Image: image, Line: k.Line})
		}
	}
	return p, len(p.Lists) > 0
}

// descend follows keys from n, or returns nil.
func descend(n *yaml.Node, keys []string) *yaml.Node {
	for _, k := range keys {
		if n = child(n, k); n == nil {
			return nil
		}
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// child returns the value of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	for _, kv := range pairs(n) {
		if kv[0].Value == key {
			return kv[1]
		}
	}
	return nil
}

func isContainerList(name string) bool {
	for _, c := range containerLists {
		if c == name {
			return true
		}
	}
	return false
}

// anchored splits a pattern key "=(initContainers)" into its name and
// anchor ("=", "^", "X", "+", "<", "" for none).
func anchored(k string) (name, anchor string) {
	if i := strings.IndexByte(k, '('); i >= 0 && i <= 1 && strings.HasSuffix(k, ")") {
		return k[i+1 : len(k)-1], k[:i]
	}
	return k, ""
}

// matches reports whether the pod's images match the pattern, and which
// image does not.
func (p PodPattern) matches(pod PodSpec) (ok bool, field string, index int, image string, pattern string) {
	for _, l := range p.Lists {
		cs := pod.list(l.Field)
		if len(cs) == 0 && !l.Optional {
			return false, l.Field, -1, "", l.Image
		}
		for i, c := range cs {
			if !valueMatches(l.Image, c.Image) {
				return false, l.Field, i, c.Image, l.Image
			}
		}
	}
	return true, "", 0, "", ""
}

// valueMatches evaluates a Kyverno string value pattern: alternatives
// separated by '|', each a conjunction of parts separated by '&', each a
// wildcard pattern, negated by a leading '!'.
func valueMatches(pattern, s string) bool {
	for _, alt := range strings.Split(pattern, "|") {
		all := true
		for _, part := range strings.Split(alt, "&") {
			part = strings.TrimSpace(part)
			neg := strings.HasPrefix(part, "!")
			if neg {
				part = strings.TrimSpace(part[1:])
			}
			if Match(part, s) == neg {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// pairs returns the key and value nodes of a mapping node in order, or
// nil.
func pairs(n *yaml.Node) [][2]*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], deref(n.Content[i+1])})
	}
	return out
}
