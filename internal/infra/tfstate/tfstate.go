// Package tfstate reads Terraform state files (format version 4): the
// header that identifies a state (serial, lineage, Terraform version), its
// resource instances by address, and what changed between two states. It
// rewrites a state's serial without touching anything else.
package tfstate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrCorrupt is matched (errors.Is) by the *CorruptError Parse returns.
var ErrCorrupt = errors.New("not a valid Terraform state")

// CorruptError says why data is not a Terraform state.
type CorruptError struct{ Reason string }

func (e *CorruptError) Error() string { return ErrCorrupt.Error() + ": " + e.Reason }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(format string, args ...any) error {
	return &CorruptError{Reason: fmt.Sprintf(format, args...)}
}

// State is a parsed Terraform state.
type State struct {
	Version          int
	TerraformVersion string
	Serial           uint64
	Lineage          string
	// Instances maps each resource instance address (module.m.aws_s3_bucket.b["k"],
	// data.x.y[0]) to its recorded attributes as canonical JSON.
	Instances map[string]string
}

type rawState struct {
	Version          *int          `json:"version"`
	TerraformVersion string        `json:"terraform_version"`
	Serial           *uint64       `json:"serial"`
	Lineage          string        `json:"lineage"`
	Resources        []rawResource `json:"resources"`
}

type rawResource struct {
	Module    string        `json:"module"`
	Mode      string        `json:"mode"`
	Type      string        `json:"type"`
	Name      string        `json:"name"`
	Instances []rawInstance `json:"instances"`
}

type rawInstance struct {
	IndexKey       json.RawMessage `json:"index_key"`
	Deposed        string          `json:"deposed"`
	Attributes     json.RawMessage `json:"attributes"`
	AttributesFlat json.RawMessage `json:"attributes_flat"`
}

// Parse reads a Terraform state. Only format version 4 (Terraform 0.12
// and later) is accepted; anything else, or a state without serial or
// lineage, is a *CorruptError.
func Parse(data []byte) (*State, error) {
	var raw rawState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, corrupt("%v", err)
	}
	if dec.More() {
		return nil, corrupt("data after the JSON object")
	}
	if raw.Version == nil {
		return nil, corrupt("no \"version\" field")
	}
	if *raw.Version != 4 {
		return nil, corrupt("state format version %d, want 4 (Terraform 0.12 or later)", *raw.Version)
	}
	if raw.Serial == nil {
		return nil, corrupt("no \"serial\" field")
	}
	if raw.Lineage == "" {
		return nil, corrupt("no \"lineage\" field")
	}
	s := &State{
		Version:          *raw.Version,
		TerraformVersion: raw.TerraformVersion,
		Serial:           *raw.Serial,
		Lineage:          raw.Lineage,
		Instances:        map[string]string{},
	}
	for i, r := range raw.Resources {
		if r.Type == "" || r.Name == "" {
			return nil, corrupt("resources[%d]: no type or name", i)
		}
		base := r.Type + "." + r.Name
		switch r.Mode {
		case "managed", "":
		case "data":
			base = "data." + base
		default:
			return nil, corrupt("resources[%d] (%s): unknown mode %q", i, base, r.Mode)
		}
		if r.Module != "" {
			base = r.Module + "." + base
		}
		for j, in := range r.Instances {
			key, err := indexKey(in.IndexKey)
			if err != nil {
				return nil, corrupt("resources[%d] (%s) instances[%d]: %v", i, base, j, err)
			}
			addr := base + key
			if in.Deposed != "" {
				addr += " (deposed " + in.Deposed + ")"
			}
			attrs := in.Attributes
			if len(attrs) == 0 {
				attrs = in.AttributesFlat
			}
			canon, err := canonical(attrs)
			if err != nil {
				return nil, corrupt("%s: attributes: %v", addr, err)
			}
			s.Instances[addr] = canon
		}
	}
	return s, nil
}

// indexKey renders an instance key as Terraform writes it in addresses:
// [0] for count, ["k"] for for_each, nothing when absent.
func indexKey(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch k := v.(type) {
	case json.Number:
		return "[" + k.String() + "]", nil
	case string:
		return "[" + strconv.Quote(k) + "]", nil
	}
	return "", fmt.Errorf("index_key %s is neither a number nor a string", raw)
}

// canonical re-encodes JSON with sorted keys so that equal values compare
// equal as strings.
func canonical(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "null", nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	out, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// Changes lists resource instance addresses that differ between two
// states, each list sorted.
type Changes struct {
	Added, Removed, Changed []string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.Changed) == 0
}

// String is "+a -b ~c" or "no resource changes".
func (c Changes) String() string {
	if c.Empty() {
		return "no resource changes"
	}
	var parts []string
	for _, a := range c.Added {
		parts = append(parts, "+"+a)
	}
	for _, a := range c.Removed {
		parts = append(parts, "-"+a)
	}
	for _, a := range c.Changed {
		parts = append(parts, "~"+a)
	}
	return strings.Join(parts, " ")
}

// Diff compares from with to: instances only in to are Added, only in from
// Removed, in both with different attributes Changed. A nil state has no
// instances.
func Diff(from, to *State) Changes {
	var fi, ti map[string]string
	if from != nil {
		fi = from.Instances
	}
	if to != nil {
		ti = to.Instances
	}
	var c Changes
	for addr, attrs := range ti {
		old, ok := fi[addr]
		switch {
		case !ok:
			c.Added = append(c.Added, addr)
		case old != attrs:
			c.Changed = append(c.Changed, addr)
		}
	}
	for addr := range fi {
		if _, ok := ti[addr]; !ok {
			c.Removed = append(c.Removed, addr)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Removed)
	sort.Strings(c.Changed)
	return c
}

// WithSerial returns data with its top-level "serial" set to serial and
// every other field kept as it was (field order and values), indented as
// Terraform writes states. data must parse (Parse).
func WithSerial(data []byte, serial uint64) ([]byte, error) {
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, corrupt("not a JSON object")
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, corrupt("%v", err)
		}
		key, _ := kt.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, corrupt("%v", err)
		}
		// encoding/json (Parse, and Terraform) matches keys without
		// regard to case, the last one winning: replace every match.
		if strings.EqualFold(key, "serial") {
			val = json.RawMessage(strconv.FormatUint(serial, 10))
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(val)
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, corrupt("%v", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// ChangedAttributes returns the top-level attribute names whose values
// differ between the instance addr in from and in to, sorted; nil when
// the instance is missing from either.
func ChangedAttributes(from, to *State, addr string) []string {
	a, okA := from.Instances[addr]
	b, okB := to.Instances[addr]
	if !okA || !okB {
		return nil
	}
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal([]byte(a), &ma) != nil || json.Unmarshal([]byte(b), &mb) != nil {
		if a != b {
			return []string{"(attributes)"}
		}
		return nil
	}
	var out []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || string(va) != string(vb) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
