package mask

import (
	"fmt"
	"reflect"
)

// maxDepth bounds how deep Value walks; deeper values (or cycles) are
// replaced by their printed form, masked.
const maxDepth = 32

// Outputs returns a copy of a step's outputs with every string masked
// (see Value). A nil map stays nil.
func (m *Masker) Outputs(in map[string]any) map[string]any {
	if in == nil {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[m.Mask(k)] = m.Value(v)
	}
	return out
}

// Value returns a copy of v with every string in it masked: strings,
// []byte, errors (as their masked message), and the strings inside maps
// (keys too), slices, arrays, pointers and exported struct fields of any
// type, nested to any depth. Other values are returned unchanged. The
// copy keeps v's dynamic type, except for errors, which become strings.
func (m *Masker) Value(v any) any {
	if v == nil {
		return v
	}
	switch x := v.(type) {
	case string:
		return m.Mask(x)
	case []byte:
		return []byte(m.Mask(string(x)))
	case error:
		return m.Mask(x.Error())
	}
	return m.reflectValue(reflect.ValueOf(v), 0).Interface()
}

func (m *Masker) reflectValue(v reflect.Value, depth int) reflect.Value {
	if depth > maxDepth {
		s := m.Mask(fmt.Sprint(v.Interface()))
		if v.Kind() == reflect.String {
			return reflect.ValueOf(s).Convert(v.Type())
		}
		if v.Kind() == reflect.Interface {
			return reflect.ValueOf(s)
		}
		return reflect.Zero(v.Type())
	}
	switch v.Kind() {
	case reflect.String:
		return reflect.ValueOf(m.Mask(v.String())).Convert(v.Type())
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		inner := v.Elem()
		if err, ok := inner.Interface().(error); ok && inner.Kind() != reflect.String {
			return reflect.ValueOf(m.Mask(err.Error()))
		}
		return m.reflectValue(inner, depth+1)
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(m.assignable(m.reflectValue(v.Elem(), depth+1), v.Type().Elem()))
		return p
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			k := m.assignable(m.reflectValue(it.Key(), depth+1), v.Type().Key())
			out.SetMapIndex(k, m.assignable(m.reflectValue(it.Value(), depth+1), v.Type().Elem()))
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return reflect.ValueOf([]byte(m.Mask(string(v.Bytes())))).Convert(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			out.Index(i).Set(m.assignable(m.reflectValue(v.Index(i), depth+1), v.Type().Elem()))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := 0; i < v.Len(); i++ {
			out.Index(i).Set(m.assignable(m.reflectValue(v.Index(i), depth+1), v.Type().Elem()))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if f := out.Field(i); f.CanSet() {
				f.Set(m.assignable(m.reflectValue(v.Field(i), depth+1), f.Type()))
			}
		}
		return out
	}
	return v
}

// assignable returns v in a form that can be stored where a t is
// expected. An error masked into a string cannot go back into a field of
// type error; such a field becomes its zero value rather than keep the
// unmasked error.
func (m *Masker) assignable(v reflect.Value, t reflect.Type) reflect.Value {
	if !v.IsValid() {
		return reflect.Zero(t)
	}
	if v.Type().AssignableTo(t) {
		return v
	}
	if v.Type().ConvertibleTo(t) && v.Kind() == t.Kind() {
		return v.Convert(t)
	}
	return reflect.Zero(t)
}
