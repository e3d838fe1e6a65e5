package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, validates and compiles the config file at path. On failure the error is
// an Errors listing every problem as FILE:LINE:COL: message.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Line: 1, Column: 1, Msg: fmt.Sprintf("cannot read config: %v", unwrapPathErr(err))}}
	}
	return Parse(path, data)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse is Load for bytes already read; name is used in error positions.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	d := newDecoder(name)
	var f File
	if len(root.Content) > 0 {
		d.decode(&root, reflectValue(&f))
	} else {
		d.errorf(&root, "the config is empty")
	}
	// Semantic checks run even after type errors, so one run reports everything; a
	// line that already has a type error gets no second complaint.
	typeErrs := len(d.errs)
	b := &builder{d: d, f: &f, cfg: &Config{Path: name}, dir: filepath.Dir(name)}
	b.build()
	if len(d.errs) > 0 {
		return nil, sorted(dropShadowed(d.errs, typeErrs))
	}
	b.cfg.Warnings = b.warnings()
	return b.cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(name string, err error) Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{File: name, Line: line, Column: 1, Msg: "YAML syntax: " + m[2]}
	}
	return Error{File: name, Line: 1, Column: 1, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

func sorted(es Errors) Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	// One node can be complained about twice (a template used in several regions).
	out := es[:0]
	for i, e := range es {
		if i > 0 && e == es[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// dropShadowed removes semantic errors (after index first) on lines that already have a
// type error: they are consequences, not news.
func dropShadowed(es Errors, first int) Errors {
	bad := map[int]bool{}
	for _, e := range es[:first] {
		bad[e.Line] = true
	}
	out := append(Errors{}, es[:first]...)
	for _, e := range es[first:] {
		if !bad[e.Line] {
			out = append(out, e)
		}
	}
	return out
}
