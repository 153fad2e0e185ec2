package chart

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// position finds a field of a rendered document, given as the dotted path
// the errors use (spec.strategy.blueGreen.args[1].name): the node to show
// for the deepest part of the path the document has (a scalar's value, a
// collection's key, a list item), or nil when it has not even the first.
func position(doc *yaml.Node, field string) *yaml.Node {
	if doc == nil {
		return nil
	}
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var shown *yaml.Node
	for _, part := range strings.Split(field, ".") {
		key, rest, _ := strings.Cut(part, "[")
		k, v := child(n, key)
		if v == nil {
			return shown
		}
		n, shown = v, k
		if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
			shown = v
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(idx)
			if !ok || err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return shown
			}
			n, shown = n.Content[i], n.Content[i]
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return shown
}

// child is the key and value nodes of key in a mapping node.
func child(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return n.Content[i], v
		}
	}
	return nil, nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// unknownField finds the first key of n that type t (decoded as
// Kubernetes decodes, names matching case-sensitively) does not define,
// and returns its dotted path below path.
func unknownField(n *yaml.Node, t reflect.Type, path string) (string, *yaml.Node) {
	if n == nil {
		return "", nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return "", nil
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return "", nil // its own decoding; nothing to walk
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return "", nil
		}
		fields := jsonFields(t, map[string]reflect.Type{})
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				return p, k
			}
			if q, at := unknownField(v, ft, p); at != nil {
				return q, at
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return "", nil
		}
		for i, c := range n.Content {
			if q, at := unknownField(c, t.Elem(), path+"["+strconv.Itoa(i)+"]"); at != nil {
				return q, at
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return "", nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if q, at := unknownField(n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value); at != nil {
				return q, at
			}
		}
	}
	return "", nil
}

// jsonFields lists a struct's JSON names, embedded structs' included,
// with their types.
func jsonFields(t reflect.Type, out map[string]reflect.Type) map[string]reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case name == "" && f.Anonymous:
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				jsonFields(ft, out)
				continue
			}
			name = f.Name
		case name == "":
			if !f.IsExported() {
				continue
			}
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
