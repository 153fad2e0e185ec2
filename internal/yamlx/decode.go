// Package yamlx decodes YAML strictly and reports every problem with the
// file, line and column it comes from.
//
// It walks a yaml.Node tree with reflection instead of relying on
// yaml.Node.Decode, whose type errors carry only a line number: unknown
// fields, wrong types and bad values all become *Error values that name
// file:line:col.
package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a problem at one place in a YAML file.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "<input>"
	}
	return fmt.Sprintf("%s:%d:%d: %s", file, e.Line, e.Column, e.Msg)
}

// Errorf returns an *Error located at node n.
func Errorf(file string, n *yaml.Node, format string, args ...any) *Error {
	e := &Error{File: file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// Unmarshaler is implemented by types that decode themselves from a node.
// Errors they return that are not *Error are located at the node.
type Unmarshaler interface {
	UnmarshalYAMLNode(d *Decoder, n *yaml.Node) error
}

// Decoder holds the file name used in error positions.
type Decoder struct {
	File string
	// SkipTemplates leaves non-string fields at their zero value when the
	// YAML holds an unresolved ${...} expression there, for validating a
	// file before its expressions can be evaluated.
	SkipTemplates bool

	// visited counts the values decoded, to bound what aliases expand
	// to; tooMany is the error returned once the bound is passed.
	visited   int
	tooMany   *Error
	lastAlias *yaml.Node
}

// MaxValues bounds how many values one Decode walks. Aliases are followed
// where they are used, so a few lines of anchors can stand for billions
// of values (a "billion laughs" file); no pipeline file comes near this.
const MaxValues = 1 << 20

// Pos is a position in a YAML file. A struct field of type Pos is filled
// with the position of the struct's own mapping.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Positions maps each key of a struct's mapping to the position of its
// value. A struct field of this type is filled while decoding.
type Positions map[string]Pos

// PosOf returns the position of n.
func PosOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

// Errorf returns an *Error at p in file.
func (p Pos) Errorf(file string, format string, args ...any) *Error {
	return &Error{File: file, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

// String is a string scalar that remembers where it was written.
type String struct {
	Value string
	Pos   Pos
}

// UnmarshalYAMLNode implements Unmarshaler.
func (s *String) UnmarshalYAMLNode(d *Decoder, n *yaml.Node) error {
	s.Pos = PosOf(n)
	return d.decode(n, reflect.ValueOf(&s.Value).Elem())
}

var (
	posType        = reflect.TypeFor[Pos]()
	positionsType  = reflect.TypeFor[Positions]()
	durationType   = reflect.TypeFor[time.Duration]()
	nodeType       = reflect.TypeFor[yaml.Node]()
	unmarshalerTyp = reflect.TypeFor[Unmarshaler]()
)

// Parse parses data into a document node. It holds exactly one document:
// a second one (after ---) is an error at its start rather than ignored.
// Syntax errors carry the line yaml.v3 reports and a column found in the
// text (see syntaxError).
func Parse(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Line: 1, Column: 1, Msg: "empty document"}
		}
		return nil, syntaxError(file, data, err)
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(file, data, err)
		}
		if !emptyDocument(&next) {
			return nil, &Error{File: file, Line: next.Line, Column: next.Column,
				Msg: "a second YAML document starts here; the file must hold one document (remove the --- line, or move the document to a file of its own)"}
		}
	}
	if emptyDocument(&doc) {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "empty document"}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// emptyDocument reports whether a document holds nothing: no content, or
// a null written as nothing at all.
func emptyDocument(doc *yaml.Node) bool {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return true
	}
	c := doc.Content[0]
	return len(doc.Content) == 1 && c.Kind == yaml.ScalarNode && c.Tag == "!!null" && c.Value == ""
}

// Decode parses data and decodes it strictly into v.
func Decode(file string, data []byte, v any) error {
	n, err := Parse(file, data)
	if err != nil {
		return err
	}
	d := &Decoder{File: file}
	return d.Decode(n, v)
}

// Decode decodes node n strictly into v, which must be a non-nil pointer.
func (d *Decoder) Decode(n *yaml.Node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("yamlx: Decode needs a non-nil pointer")
	}
	return dedupe(d.decode(n, rv.Elem()))
}

// dedupe drops repeats of the same problem at the same place: a node
// reached through several aliases is decoded once per alias, and its
// errors would otherwise be reported once per alias.
func dedupe(err error) error {
	if err == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []error
	for _, e := range appendErr(nil, err) {
		if key := e.Error(); !seen[key] {
			seen[key] = true
			out = append(out, e)
		}
	}
	return joinErrs(out)
}

func (d *Decoder) errorf(n *yaml.Node, format string, args ...any) error {
	return Errorf(d.File, n, format, args...)
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (d *Decoder) decode(n *yaml.Node, v reflect.Value) error {
	if d.tooMany != nil {
		return d.tooMany
	}
	if n.Kind == yaml.AliasNode {
		d.lastAlias = n
	}
	if d.visited++; d.visited > MaxValues {
		at := n
		if d.lastAlias != nil {
			at = d.lastAlias
		}
		d.tooMany = Errorf(d.File, at, "the file stands for more than %d values once its aliases are expanded; write the repeated parts out or use fewer aliases", MaxValues)
		return d.tooMany
	}
	n = resolveAlias(n)
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return d.decode(n.Content[0], v)
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return nil
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerTyp) {
		err := v.Addr().Interface().(Unmarshaler).UnmarshalYAMLNode(d, n)
		if err == nil {
			return nil
		}
		var ye *Error
		if errors.As(err, &ye) {
			return err
		}
		return d.errorf(n, "%v", err)
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			v.SetZero()
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(n, v.Elem())
	}
	if isNull(n) && v.Kind() != reflect.Interface {
		v.SetZero()
		// A null where a mapping may be written still has a place, so
		// that later checks of the (empty) struct can name it.
		if v.Kind() == reflect.Struct {
			if fs := structFields(v.Type()); fs.pos != nil {
				v.FieldByIndex(fs.pos).Set(reflect.ValueOf(PosOf(n)))
			}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			return d.errorf(n, "%v", err)
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	case reflect.Struct:
		return d.decodeStruct(n, v)
	case reflect.Map:
		return d.decodeMap(n, v)
	case reflect.Slice:
		return d.decodeSlice(n, v)
	}
	if n.Kind != yaml.ScalarNode {
		return d.errorf(n, "expected %s, got %s", typeName(v.Type()), kindName(n))
	}
	if d.SkipTemplates && v.Kind() != reflect.String && n.Tag == "!!str" && strings.Contains(n.Value, "${") {
		return nil
	}
	return d.decodeScalar(n, v)
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, "expected a mapping, got %s", kindName(n))
	}
	fields := structFields(v.Type())
	if fields.pos != nil {
		v.FieldByIndex(fields.pos).Set(reflect.ValueOf(PosOf(n)))
	}
	var positions Positions
	if fields.positions != nil {
		positions = Positions{}
		v.FieldByIndex(fields.positions).Set(reflect.ValueOf(positions))
	}
	seen := map[string]bool{}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" {
			errs = append(errs, d.errorf(k, "merge keys are not supported"))
			continue
		}
		idx, ok := fields.byName[k.Value]
		if !ok {
			errs = append(errs, d.errorf(k, "unknown field %q (known: %s)", k.Value, strings.Join(fields.names, ", ")))
			continue
		}
		if seen[k.Value] {
			errs = append(errs, d.errorf(k, "field %q set twice", k.Value))
			continue
		}
		seen[k.Value] = true
		if positions != nil {
			positions[k.Value] = PosOf(resolveAlias(val))
		}
		errs = appendErr(errs, d.decode(val, v.FieldByIndex(idx)))
	}
	return joinErrs(errs)
}

// appendErr adds err to errs, flattening joined errors so that every
// problem is one element.
func appendErr(errs []error, err error) []error {
	if err == nil {
		return errs
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = appendErr(errs, e)
		}
		return errs
	}
	return append(errs, err)
}

func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

func (d *Decoder) decodeMap(n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, "expected a mapping, got %s", kindName(n))
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	}
	kt, et := v.Type().Key(), v.Type().Elem()
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kv := reflect.New(kt).Elem()
		if err := d.decode(k, kv); err != nil {
			errs = appendErr(errs, err)
			continue
		}
		if v.MapIndex(kv).IsValid() {
			errs = append(errs, d.errorf(k, "key %q set twice", k.Value))
			continue
		}
		ev := reflect.New(et).Elem()
		if err := d.decode(val, ev); err != nil {
			errs = appendErr(errs, err)
			continue
		}
		v.SetMapIndex(kv, ev)
	}
	return joinErrs(errs)
}

func (d *Decoder) decodeSlice(n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.SequenceNode {
		return d.errorf(n, "expected a list, got %s", kindName(n))
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	et := v.Type().Elem()
	// A null item where a mapping is expected (`- ~`, or `-` with
	// nothing after it) is an error here, at its place, rather than an
	// empty item that fails later without a position.
	mappingItems := et.Kind() == reflect.Struct && !reflect.PointerTo(et).Implements(unmarshalerTyp)
	var errs []error
	for i, c := range n.Content {
		if mappingItems && isNull(resolveAlias(c)) {
			errs = append(errs, d.errorf(c, "expected a mapping, got null"))
			continue
		}
		errs = appendErr(errs, d.decode(c, s.Index(i)))
	}
	v.Set(s)
	return joinErrs(errs)
}

func (d *Decoder) decodeScalar(n *yaml.Node, v reflect.Value) error {
	s := n.Value
	if v.Type() == durationType {
		dur, err := ParseDuration(s)
		if err != nil {
			return d.errorf(n, "%v", err)
		}
		v.SetInt(int64(dur))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool" && n.Tag != "!" {
			return d.errorf(n, "expected a string, got %s", kindName(n))
		}
		v.SetString(s)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			return d.errorf(n, "expected true or false, got %q", s)
		}
		v.SetBool(s == "true" || s == "True" || s == "TRUE")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			return d.errorf(n, "expected an integer, got %q", s)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			return d.errorf(n, "expected a non-negative integer, got %q", s)
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			return d.errorf(n, "expected a number, got %q", s)
		}
		var x any
		if err := n.Decode(&x); err != nil {
			return d.errorf(n, "expected a number, got %q", s)
		}
		switch t := x.(type) {
		case int:
			v.SetFloat(float64(t))
		case int64:
			v.SetFloat(float64(t))
		case uint64:
			v.SetFloat(float64(t))
		case float64:
			if math.IsNaN(t) {
				return d.errorf(n, "NaN is not allowed here")
			}
			v.SetFloat(t)
		default:
			return d.errorf(n, "expected a number, got %q", s)
		}
	default:
		return d.errorf(n, "cannot decode into %s", typeName(v.Type()))
	}
	return nil
}

// ParseDuration accepts Go durations ("90s", "1h30m") and a day suffix
// ("30d"), which pipeline files use for ages.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 5m, 2h, 30d)", s)
	}
	if dur < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return dur, nil
}

type fieldSet struct {
	byName    map[string][]int
	names     []string
	pos       []int
	positions []int
}

func structFields(t reflect.Type) fieldSet {
	fs := fieldSet{byName: map[string][]int{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			switch f.Type {
			case posType:
				fs.pos = idx
				continue
			case positionsType:
				fs.positions = idx
				continue
			}
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && (strings.Contains(opts, "inline") || tag == "") && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fs.byName[name] = idx
			fs.names = append(fs.names, name)
		}
	}
	walk(t, nil)
	return fs
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an unexpected node"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}
