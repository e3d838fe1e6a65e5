package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a config file, located at the node that caused it.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Errors is every problem found in one load, sorted by position.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// decoder walks a yaml.Node tree into Go values by hand rather than through
// yaml.Decode: that way every problem (unknown key, wrong type, bad duration,
// duplicate key) is collected with its line and column, not only the first.
type decoder struct {
	file string
	errs Errors
	// maps keeps, for every decoded struct (by pointer), its mapping node, so that
	// validation after decoding can point at the key it complains about.
	maps map[any]*yaml.Node
	// budget bounds the nodes visited, so an alias bomb ("billion laughs") is an error
	// instead of a hang.
	budget int
}

const nodeBudget = 200_000

func newDecoder(file string) *decoder {
	return &decoder{file: file, maps: map[any]*yaml.Node{}, budget: nodeBudget}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, d.errorAt(n, fmt.Sprintf(format, args...)))
}

// errorAt places msg at n (1:1 when n is unknown), for errors and warnings alike.
func (d *decoder) errorAt(n *yaml.Node, msg string) Error {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, max(n.Column, 1)
	}
	return Error{File: d.file, Line: line, Column: col, Msg: msg}
}

// at returns the value node of key in the mapping decoded into structPtr, or the
// mapping itself when the key is absent, or nil when nothing is known.
func (d *decoder) at(structPtr any, key string) *yaml.Node {
	m := d.maps[structPtr]
	if m == nil {
		return nil
	}
	if key == "" {
		return m
	}
	if _, v := entry(m, key); v != nil {
		return v
	}
	return m
}

// value returns the value node of key, or nil when the key is not written.
func (d *decoder) value(structPtr any, key string) *yaml.Node {
	n := d.at(structPtr, key)
	if n == d.maps[structPtr] {
		return nil
	}
	return n
}

// keyAt returns the key node of a map entry (for errors about a name), or the mapping
// when the key is absent.
func keyAt(mapping *yaml.Node, key string) *yaml.Node {
	if k, _ := entry(mapping, key); k != nil {
		return k
	}
	return mapping
}

// valueAt is the value node of key in a mapping node (nil when absent).
func valueAt(mapping *yaml.Node, key string) *yaml.Node {
	_, v := entry(mapping, key)
	return v
}

// entry returns the key and value nodes of key in a mapping node (nils when absent or
// when the node is no mapping).
func entry(mapping *yaml.Node, key string) (k, v *yaml.Node) {
	if mapping == nil || mapping.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return mapping.Content[i], mapping.Content[i+1]
		}
	}
	return nil, nil
}

// keysInOrder lists a mapping's keys as written.
func keysInOrder(mapping *yaml.Node) []string {
	if mapping == nil || mapping.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]string, 0, len(mapping.Content)/2)
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		keys = append(keys, mapping.Content[i].Value)
	}
	return keys
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	nodeType     = reflect.TypeOf(yaml.Node{})
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value) {
	d.budget--
	if d.budget == 0 {
		d.errorf(n, "the document is too large or expands too far through aliases (over %d nodes)", nodeBudget)
	}
	if d.budget <= 0 {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem())
		return
	}
	if v.Type() == durationType {
		d.decodeDuration(n, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if d.decodeShorthand(n, v) {
			return
		}
		d.decodeStruct(n, v)
	case reflect.Map:
		d.decodeMap(n, v)
	case reflect.Slice:
		d.decodeSlice(n, v)
	case reflect.String:
		if s, ok := d.scalar(n, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if s, ok := d.scalar(n, "an integer"); ok {
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				d.errorf(n, "want an integer, got %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, "a number"); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				d.errorf(n, "want a number, got %q", s)
				return
			}
			v.SetFloat(f)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, "true or false"); ok {
			b, err := strconv.ParseBool(s)
			if err != nil {
				d.errorf(n, "want true or false, got %q", s)
				return
			}
			v.SetBool(b)
		}
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.errorf(n, "internal: cannot decode into %s", v.Type())
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (d *decoder) scalar(n *yaml.Node, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "want %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value) {
	s, ok := d.scalar(n, "a duration like 30s")
	if !ok {
		return
	}
	if s == "0" {
		v.SetInt(0)
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, "bad duration %q: want a number with a unit, like 500ms, 30s or 2m", s)
		return
	}
	if dur < 0 {
		d.errorf(n, "duration %q is negative", s)
		return
	}
	v.SetInt(int64(dur))
}

type fieldInfo struct {
	index []int // for reflect.Value.FieldByIndex: a field of an inline struct is two deep
	name  string
}

var fieldCache sync.Map // reflect.Type -> map[string]fieldInfo; read-only after fill, safe to share

func yamlFields(t reflect.Type) map[string]fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]fieldInfo)
	}
	fields := map[string]fieldInfo{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key, inline := YAMLKey(sf)
		switch {
		case inline: // its keys are the parent's
			for tag, f := range yamlFields(sf.Type) {
				fields[tag] = fieldInfo{index: append([]int{i}, f.index...), name: tag}
			}
		case key != "":
			fields[key] = fieldInfo{index: []int{i}, name: key}
		}
	}
	fieldCache.Store(t, fields)
	return fields
}

// YAMLKey is the key a struct field is read from: its yaml tag's name, else its name
// in lower case; "" for a field that is not read (unexported, or tagged "-"). inline
// is true for an embedded struct tagged `yaml:",inline"`, whose keys are the parent's.
// The schema generator (config/schemagen) names keys by it too.
func YAMLKey(sf reflect.StructField) (key string, inline bool) {
	if isInline(sf) {
		return "", true
	}
	key = strings.Split(sf.Tag.Get("yaml"), ",")[0]
	switch {
	case key == "-" || !sf.IsExported():
		return "", false
	case key == "":
		return strings.ToLower(sf.Name), false
	}
	return key, false
}

// shorthand is a struct that may also be written as one scalar (a selector alone).
type shorthand interface{ fromScalar(string) }

// HasShorthand reports whether a struct type may also be written as one scalar, for
// the schema generator (config/schemagen).
func HasShorthand(t reflect.Type) bool {
	_, ok := reflect.New(t).Interface().(shorthand)
	return ok
}

// decodeShorthand decodes a scalar into a struct that accepts one, and reports whether
// it did; a mapping goes through decodeStruct as usual.
func (d *decoder) decodeShorthand(n *yaml.Node, v reflect.Value) bool {
	if n.Kind != yaml.ScalarNode || isNull(n) || !v.CanAddr() {
		return false
	}
	s, ok := v.Addr().Interface().(shorthand)
	if !ok {
		return false
	}
	d.maps[v.Addr().Interface()] = n
	s.fromScalar(n.Value)
	return true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "want a mapping, got %s", kindName(n))
		return
	}
	d.noteMapping(n, v)
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			d.errorf(k, "key %q is given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		f, ok := fields[k.Value]
		if !ok {
			d.errorf(k, "unknown key %q (known here: %s)", k.Value, knownKeys(fields))
			continue
		}
		d.decode(val, v.FieldByIndex(f.index))
	}
}

// isInline reports whether sf is an embedded struct tagged `yaml:",inline"`.
func isInline(sf reflect.StructField) bool {
	_, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	return sf.Anonymous && opts == "inline" && sf.Type.Kind() == reflect.Struct
}

// noteMapping records n as the mapping of the struct v, and of each struct inline in
// it: errors about an inline struct's keys point into the same mapping.
func (d *decoder) noteMapping(n *yaml.Node, v reflect.Value) {
	if !v.CanAddr() {
		return
	}
	d.maps[v.Addr().Interface()] = n
	for i := 0; i < v.NumField(); i++ {
		if isInline(v.Type().Field(i)) {
			d.noteMapping(n, v.Field(i))
		}
	}
}

func knownKeys(fields map[string]fieldInfo) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "want a mapping, got %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n, "internal: map key must be a string")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
		if v.MapIndex(key).IsValid() {
			d.errorf(k, "key %q is given twice", k.Value)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem)
		v.SetMapIndex(key, elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "want a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i))
	}
	v.Set(s)
}
