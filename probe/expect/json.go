package expect

import (
	"github.com/picket-dev/picket/internal/scrub"

	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/picket-dev/picket/probe/tmpl"
)

type jsonCheck struct {
	path string // gjson path, "$." stripped
	want *tmpl.Template
}

func compileJSON(spec map[string]string, fail func(key string, err error)) []jsonCheck {
	var checks []jsonCheck
	for _, key := range slices.Sorted(maps.Keys(spec)) {
		path := strings.TrimPrefix(key, "$.")
		if path == "" || path == "$" {
			fail(key, errors.New("empty JSON path: want a gjson path like items.0.id"))
			continue
		}
		want, err := tmpl.Parse("json "+path, spec[key])
		if err != nil {
			fail(key, err)
			continue
		}
		checks = append(checks, jsonCheck{path: path, want: want})
	}
	return checks
}

// bodyView parses the body lazily and at most once per evaluation, so the JSON checks
// and the expression share one validation and one decode.
type bodyView struct {
	raw []byte

	validated, valid bool

	decoded bool
	value   any // the body decoded for expr; nil when not JSON
}

func (b *bodyView) isJSON() bool {
	if !b.validated {
		b.valid = gjson.ValidBytes(b.raw)
		b.validated = true
	}
	return b.valid
}

func (b *bodyView) decode() any {
	if !b.decoded {
		b.decoded = true
		if b.isJSON() {
			// Valid JSON always decodes; numbers become float64, as expr expects. A
			// local, so that only this path allocates and not every evaluation's view.
			var v any
			_ = json.Unmarshal(b.raw, &v)
			b.value = v
		}
	}
	return b.value
}

func (c *Checks) checkJSON(body *bodyView, data tmpl.Data, fail func(string)) {
	if len(c.json) == 0 {
		return
	}
	if !body.isJSON() {
		fail(fmt.Sprintf("body is not JSON (%q), want JSON for %s", scrub.Excerpt(body.raw, 60), c.jsonPaths()))
		return
	}
	for i := range c.json {
		if msg := c.json[i].check(body.raw, data); msg != "" {
			fail(msg)
		}
	}
}

func (c *Checks) jsonPaths() string {
	paths := make([]string, len(c.json))
	for i, j := range c.json {
		paths[i] = j.path
	}
	return strings.Join(paths, ", ")
}

func (j *jsonCheck) check(body []byte, data tmpl.Data) string {
	want, err := j.want.Render(data)
	if err != nil {
		return fmt.Sprintf("json %s: %v", j.path, err)
	}
	got := gjson.GetBytes(body, j.path)
	if !got.Exists() {
		return fmt.Sprintf("json %s missing, want %q", j.path, want)
	}
	ok, asLiteral := jsonEqual(got, want)
	if ok {
		return ""
	}
	wantShown := strconv.Quote(want)
	if asLiteral {
		wantShown = want
	}
	return fmt.Sprintf("json %s = %s, want %s", j.path, showJSON(got), wantShown)
}

// jsonEqual compares a JSON value with the expected string by the value's type: numbers
// as numbers (1 == 1.0), true/false/null as literals, strings as strings, and objects
// and arrays as decoded values. asLiteral says want was read as JSON, so a message shows
// it bare rather than quoted.
func jsonEqual(got gjson.Result, want string) (ok, asLiteral bool) {
	switch got.Type {
	case gjson.String:
		return got.Str == want, false
	case gjson.Number:
		f, isNumber := parseJSONNumber(want)
		return isNumber && numbersEqual(got, want, f), isNumber
	case gjson.True, gjson.False:
		isBool := want == "true" || want == "false"
		return isBool && got.Bool() == (want == "true"), isBool
	case gjson.Null:
		return want == "null", want == "null"
	default: // object or array
		if !gjson.Valid(want) {
			return false, false
		}
		return reflect.DeepEqual(got.Value(), gjson.Parse(want).Value()), true
	}
}

// numbersEqual compares as float64 (1 == 1.0), except that two integers are compared
// exactly: ids above 2^53 (snowflakes) would otherwise equal their neighbours.
func numbersEqual(got gjson.Result, want string, wantFloat float64) bool {
	gotInt, errGot := strconv.ParseInt(got.Raw, 10, 64)
	wantInt, errWant := strconv.ParseInt(want, 10, 64)
	if errGot == nil && errWant == nil {
		return gotInt == wantInt
	}
	return got.Raw == want || got.Num == wantFloat
}

// parseJSONNumber accepts what JSON calls a number (not "NaN", "Inf" or " 1", which
// strconv alone would take or reject differently). Out of range yields ±Inf, which still
// compares.
func parseJSONNumber(s string) (float64, bool) {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) || !gjson.Valid(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// showJSON renders a found value for a message: strings quoted, others as written,
// both cut to a readable length.
func showJSON(got gjson.Result) string {
	if got.Type == gjson.String {
		return strconv.Quote(scrub.Excerpt([]byte(got.Str), excerptBytes))
	}
	return scrub.Excerpt([]byte(got.Raw), excerptBytes)
}
