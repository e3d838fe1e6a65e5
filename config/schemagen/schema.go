package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/picket-dev/picket/config"
)

// generator builds the schema by walking the Go types the way config's decoder walks
// a YAML document: a struct's keys are its yaml tags (or lower-cased field names), and
// any other key is refused; strings take any scalar; durations are Go durations.
type generator struct {
	docs map[string]string // "Type.Field" and "Type" -> comment
	defs map[string]any
}

var durationType = reflect.TypeOf(time.Duration(0))

// extras add what the types do not say: the allowed words of a few keys, and the
// descriptions of top-level keys whose fields have no comment.
var extras = map[string]map[string]any{
	"AlertingSpec.degraded":  {"enum": []string{"page", "notify", "ignore"}},
	"DNSSpec.transport":      {"enum": []string{"udp", "tcp", "tls"}},
	"MatchSpec.scope":        {"items": map[string]any{"enum": config.Scopes}},
	"ProductSpec.priority":   {"minimum": 1},
	"File.vantage":           {"description": "Where this Picket runs: payload.source of pages and the vantage label (default: the host name)."},
	"File.listen":            {"description": "HTTP address of the daemon: metrics, API, status page (default 127.0.0.1:9115)."},
	"File.state_dir":         {"description": "Folder of the state file (states, incidents, outbox, history); relative to this file's folder (default ./picket-state)."},
	"File.concurrency":       {"description": "Journeys running at once, at least (default 64)."},
	"File.defaults":          {"description": "Settings every journey takes unless it says otherwise."},
	"File.secrets":           {"description": "Named secrets, {env: VAR} or {file: PATH} (relative to this file); templates see them as .secret.NAME."},
	"File.regions":           {"description": "The platform's isolated stacks, each with the vars templates see as .region.NAME."},
	"File.products":          {"description": "What customers buy, each with its journeys; targets are products x regions x journeys."},
	"File.notifiers":         {"description": "Named notifiers, each with exactly one kind."},
	"File.routes":            {"description": "Which notifiers hear of which incidents, tried in order; the first match wins unless it says continue."},
	"File.blast_radius":      {"description": "When failures add up to a wider scope (region, product, global)."},
	"File.alerting":          {"description": "Alerting settings that are not per journey."},
	"File.silences":          {"description": "Maintenance windows that mute matching incidents."},
	"File.self_check":        {"description": "Targets that share nothing with the platform: when most fail, this vantage is impaired and holds its pages."},
	"File.heartbeat":         {"description": "A dead man's switch, pinged only while the scheduler is healthy."},
	"File.api":               {"description": "The bearer token of write API calls (silences, reload)."},
	"File.shard":             {"description": "Probe only this share of the targets."},
	"File.cluster":           {"description": "Join a fleet of vantages that agree before paging."},
	"StepSpec.expect":        {"description": "What must hold of the answer."},
	"StepSpec.extract":       {"description": "Values taken out of the answer into .vars for later steps."},
	"NotifierSpec.pagerduty": {"description": "PagerDuty Events API v2."},
	"NotifierSpec.slack":     {"description": "Slack."},
	"NotifierSpec.webhook":   {"description": "Picket's JSON payload posted to a URL."},
}

func generate(srcDirs []string) ([]byte, error) {
	docs, err := readDocs(srcDirs)
	if err != nil {
		return nil, err
	}
	g := &generator{docs: docs, defs: map[string]any{
		"duration": map[string]any{
			"description": "A Go duration: a number with a unit (ns, us, ms, s, m, h), like 500ms, 30s, 1m30s; or 0.",
			"anyOf":       []any{map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}, map[string]any{"const": 0}},
		},
	}}
	root := g.object(reflect.TypeOf(config.File{}))
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["title"] = "Picket config"
	root["type"] = "object"
	root["definitions"] = g.defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// of is the schema of a value of type t.
func (g *generator) of(t reflect.Type) map[string]any {
	if t == durationType {
		return map[string]any{"$ref": "#/definitions/duration"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.of(t.Elem())
	case reflect.Struct:
		name := t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // placeholder: a type that refers to itself
			g.defs[name] = g.object(t)
		}
		if config.HasShorthand(t) { // `click: "#id"` or `click: {selector: "#id"}`
			return map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"$ref": "#/definitions/" + name}}}
		}
		return map[string]any{"$ref": "#/definitions/" + name}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": g.of(t.Elem())}
	case reflect.Slice:
		return map[string]any{"type": []string{"array", "null"}, "items": g.of(t.Elem())}
	case reflect.String:
		return map[string]any{"type": []string{"string", "number", "boolean"}} // any scalar, read as its text
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	}
	panic(fmt.Sprintf("schemagen: no schema for %s", t))
}

// object is a struct's schema: its keys and nothing else.
func (g *generator) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	g.addFields(t, props)
	s := map[string]any{"type": []string{"object", "null"}, "additionalProperties": false, "properties": props}
	if d := g.docs[t.Name()]; d != "" {
		s["description"] = d
	}
	return s
}

// addFields puts the keys of struct t into props; a field tagged `yaml:",inline"`
// (RunSpec in Defaults and JourneySpec) adds its own keys at the same level, as the
// decoder reads them.
func (g *generator) addFields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, inline := config.YAMLKey(f)
		if inline {
			g.addFields(f.Type, props)
			continue
		}
		if key == "" {
			continue
		}
		p := g.of(f.Type)
		if _, isRef := p["$ref"]; isRef {
			p = map[string]any{"allOf": []any{p}} // draft-07 ignores a description beside $ref
		}
		if d := g.docs[t.Name()+"."+f.Name]; d != "" {
			p["description"] = d
		}
		for k, v := range extras[t.Name()+"."+key] {
			if k == "items" {
				items := p["items"].(map[string]any)
				for ik, iv := range v.(map[string]any) {
					items[ik] = iv
				}
				continue
			}
			p[k] = v
		}
		props[key] = p
	}
}
