package expect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expr-lang/expr/file"
	"go.uber.org/goleak"

	"github.com/picket-dev/picket/probe/tmpl"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// refNow is the clock of the certificate cases: a cert from selfSigned(t, refNow+3d)
// expires on 2026-11-28.
var refNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustCompile(t testing.TB, s Spec) *Checks {
	t.Helper()
	c, errs := Compile(s)
	if len(errs) > 0 {
		t.Fatalf("Compile(%+v): %v", s, errs)
	}
	return c
}

// selfSigned makes a self-signed certificate for 127.0.0.1 valid until notAfter.
func selfSigned(t testing.TB, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "picket test"},
		NotBefore:             notAfter.Add(-30 * 24 * time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestEvaluate(t *testing.T) {
	cert, _ := selfSigned(t, refNow.Add(3*24*time.Hour))
	runData := tmpl.Data{"run": map[string]any{"id": "r-42"}}
	jsonBody := []byte(`{"id":"abc","n":1,"f":1.0,"big":2,"ok":true,"off":false,"nil":null,
		"items":[{"id":"x"}],"empty":[],"obj":{"a":1,"b":[true]},"m":"r-42","s1":"1","snowflake":1234567890123456789}`)

	tests := []struct {
		name string
		spec Spec
		obs  Observation
		data tmpl.Data
		want string // "" = every check holds
	}{
		{name: "no checks", spec: Spec{}, obs: Observation{Status: 500}},

		{name: "status class ok", spec: Spec{Status: []string{"2xx"}}, obs: Observation{Status: 204}},
		{name: "status class fails", spec: Spec{Status: []string{"2xx"}}, obs: Observation{Status: 503},
			want: "status 503, want 2xx"},
		{name: "status upper-case class", spec: Spec{Status: []string{"2XX"}}, obs: Observation{Status: 404},
			want: "status 404, want 2xx"},
		{name: "status codes ok", spec: Spec{Status: []string{"200", "201"}}, obs: Observation{Status: 201}},
		{name: "status codes fail", spec: Spec{Status: []string{"200", "201"}}, obs: Observation{Status: 404},
			want: "status 404, want 200 or 201"},
		{name: "status mixed list", spec: Spec{Status: []string{"200", "3xx", "404"}}, obs: Observation{Status: 500},
			want: "status 500, want 200, 3xx or 404"},
		{name: "status 1xx upper edge", spec: Spec{Status: []string{"1xx"}}, obs: Observation{Status: 199}},
		{name: "status not HTTP", spec: Spec{Status: []string{"2xx"}}, obs: Observation{Status: 0},
			want: "status 0, want 2xx"},
		{name: "status beyond 5xx", spec: Spec{Status: []string{"5xx"}}, obs: Observation{Status: 600},
			want: "status 600, want 5xx"},

		{name: "latency at limit", spec: Spec{Latency: 2 * time.Second}, obs: Observation{Latency: 2 * time.Second}},
		{name: "latency over", spec: Spec{Latency: 2 * time.Second}, obs: Observation{Latency: 2300 * time.Millisecond},
			want: "latency 2.3s over 2s"},
		{name: "latency rounded for reading", spec: Spec{Latency: 2 * time.Second},
			obs: Observation{Latency: 2300*time.Millisecond + 123*time.Microsecond}, want: "latency 2.3s over 2s"},
		{name: "latency just over is not rounded away", spec: Spec{Latency: 2 * time.Second},
			obs: Observation{Latency: 2*time.Second + 400*time.Microsecond}, want: "latency 2.0004s over 2s"},

		{name: "json string ok", spec: Spec{JSON: map[string]string{"id": "abc"}}, obs: Observation{Body: jsonBody}},
		{name: "json string fails", spec: Spec{JSON: map[string]string{"id": "xyz"}}, obs: Observation{Body: jsonBody},
			want: `json id = "abc", want "xyz"`},
		{name: "json $. prefix stripped", spec: Spec{JSON: map[string]string{"$.id": "xyz"}}, obs: Observation{Body: jsonBody},
			want: `json id = "abc", want "xyz"`},
		{name: "json 1 == 1.0", spec: Spec{JSON: map[string]string{"n": "1.0", "f": "1", "big": "2e0"}}, obs: Observation{Body: jsonBody}},
		{name: "json number differs", spec: Spec{JSON: map[string]string{"big": "1"}}, obs: Observation{Body: jsonBody},
			want: "json big = 2, want 1"},
		{name: "json big integers exact", spec: Spec{JSON: map[string]string{"snowflake": "1234567890123456789"}},
			obs: Observation{Body: jsonBody}},
		{name: "json big integer neighbour", spec: Spec{JSON: map[string]string{"snowflake": "1234567890123456788"}},
			obs: Observation{Body: jsonBody}, want: "json snowflake = 1234567890123456789, want 1234567890123456788"},
		{name: "json number vs text", spec: Spec{JSON: map[string]string{"n": "one"}}, obs: Observation{Body: jsonBody},
			want: `json n = 1, want "one"`},
		{name: "json NaN is not a number", spec: Spec{JSON: map[string]string{"n": "NaN"}}, obs: Observation{Body: jsonBody},
			want: `json n = 1, want "NaN"`},
		{name: "json string is not a number", spec: Spec{JSON: map[string]string{"s1": "1.0"}}, obs: Observation{Body: jsonBody},
			want: `json s1 = "1", want "1.0"`},
		{name: "json bools and null ok", spec: Spec{JSON: map[string]string{"ok": "true", "off": "false", "nil": "null"}},
			obs: Observation{Body: jsonBody}},
		{name: "json bool fails", spec: Spec{JSON: map[string]string{"off": "true"}}, obs: Observation{Body: jsonBody},
			want: "json off = false, want true"},
		{name: "json bool vs text", spec: Spec{JSON: map[string]string{"ok": "yes"}}, obs: Observation{Body: jsonBody},
			want: `json ok = true, want "yes"`},
		{name: "json null fails", spec: Spec{JSON: map[string]string{"nil": "x"}}, obs: Observation{Body: jsonBody},
			want: `json nil = null, want "x"`},
		{name: "json nested path ok", spec: Spec{JSON: map[string]string{"items.0.id": "x", "items.#": "1"}},
			obs: Observation{Body: jsonBody}},
		{name: "json missing", spec: Spec{JSON: map[string]string{"items.1.id": "x"}}, obs: Observation{Body: jsonBody},
			want: `json items.1.id missing, want "x"`},
		{name: "json object compared as value", spec: Spec{JSON: map[string]string{"obj": `{"b": [true], "a": 1.0}`}},
			obs: Observation{Body: jsonBody}},
		{name: "json object differs", spec: Spec{JSON: map[string]string{"obj": `{"a":2}`}}, obs: Observation{Body: jsonBody},
			want: `json obj = {"a":1,"b":[true]}, want {"a":2}`},
		{name: "json empty array", spec: Spec{JSON: map[string]string{"empty": "[]"}}, obs: Observation{Body: jsonBody}},
		{name: "json templated ok", spec: Spec{JSON: map[string]string{"m": "{{.run.id}}"}}, obs: Observation{Body: jsonBody},
			data: runData},
		{name: "json templated fails", spec: Spec{JSON: map[string]string{"id": "{{.run.id}}"}}, obs: Observation{Body: jsonBody},
			data: runData, want: `json id = "abc", want "r-42"`},
		{name: "json template render error", spec: Spec{JSON: map[string]string{"m": "{{.run.id}}"}}, obs: Observation{Body: jsonBody},
			want: `json m: template "{{.run.id}}": 1:6: executing "json m" at <.run.id>: map has no entry for key "run"`},
		{name: "json body not JSON", spec: Spec{JSON: map[string]string{"id": "x", "m": "y"}},
			obs:  Observation{Body: []byte("<html>\n502 Bad Gateway</html>")},
			want: `body is not JSON ("<html> 502 Bad Gateway</html>"), want JSON for id, m`},
		{name: "json body empty", spec: Spec{JSON: map[string]string{"id": "x"}}, obs: Observation{},
			want: `body is not JSON (""), want JSON for id`},

		{name: "body contains ok", spec: Spec{BodyContains: "hello"}, obs: Observation{Body: []byte("say hello")}},
		{name: "body contains fails", spec: Spec{BodyContains: "hello"}, obs: Observation{Body: []byte("bye")},
			want: `body does not contain "hello"`},
		{name: "body contains templated ok", spec: Spec{BodyContains: `"m":"{{.run.id}}"`}, obs: Observation{Body: jsonBody},
			data: runData},
		{name: "body contains templated fails", spec: Spec{BodyContains: "id {{.run.id}}"}, obs: Observation{Body: jsonBody},
			data: runData, want: `body does not contain "id r-42"`},
		{name: "body contains render error", spec: Spec{BodyContains: "{{.run.id}}"}, obs: Observation{Body: jsonBody},
			data: tmpl.Data{}, want: `body_contains: template "{{.run.id}}": 1:6: executing "body_contains" at <.run.id>: map has no entry for key "run"`},

		{name: "body matches ok", spec: Spec{BodyMatches: `^ok\b`}, obs: Observation{Body: []byte("ok then")}},
		{name: "body matches fails", spec: Spec{BodyMatches: "^ok"}, obs: Observation{Body: []byte("not ok")},
			want: "body does not match `^ok`"},

		{name: "header ok", spec: Spec{Headers: map[string]string{"content-type": "json"}},
			obs: Observation{Headers: http.Header{"Content-Type": {"application/json"}}}},
		{name: "header fails", spec: Spec{Headers: map[string]string{"Content-Type": "json"}},
			obs:  Observation{Headers: http.Header{"Content-Type": {"text/html", "application/json"}}},
			want: "header Content-Type = \"text/html\", want match `json`"},
		{name: "header missing", spec: Spec{Headers: map[string]string{"x-request-id": ".+"}},
			obs: Observation{Headers: http.Header{}}, want: "header X-Request-Id missing, want match `.+`"},

		{name: "cert ok", spec: Spec{CertMinDays: 3}, obs: Observation{Certs: []*x509.Certificate{cert}, Now: refNow}},
		// Near expiry is a warning (CertWarning), not a failure.
		{name: "cert too close", spec: Spec{CertMinDays: 14}, obs: Observation{Certs: []*x509.Certificate{cert}, Now: refNow}},
		{name: "cert expired", spec: Spec{CertMinDays: 14}, obs: Observation{Certs: []*x509.Certificate{cert}, Now: refNow.AddDate(0, 1, 0)},
			want: "certificate expired on 2026-11-28, want at least 14 days left"},
		{name: "cert without TLS", spec: Spec{CertMinDays: 14}, obs: Observation{},
			want: "no certificate (not TLS), want at least 14 days left"},

		{name: "expr ok", spec: Spec{Expr: "len(json.items) > 0"}, obs: Observation{Body: jsonBody}},
		{name: "expr false", spec: Spec{Expr: "len(json.empty) > 0"}, obs: Observation{Body: jsonBody},
			want: "expr `len(json.empty) > 0` is false"},
		{name: "expr json number equals int", spec: Spec{Expr: "json.n == 1 && json.items[0].id == 'x'"}, obs: Observation{Body: jsonBody}},
		{name: "expr status and latency", spec: Spec{Expr: `status == 200 && latency < duration("2s")`},
			obs: Observation{Status: 200, Latency: 1500 * time.Millisecond}},
		{name: "expr latency too slow", spec: Spec{Expr: `latency < duration("2s")`}, obs: Observation{Latency: 3 * time.Second},
			want: "expr `latency < duration(\"2s\")` is false"},
		{name: "expr headers vars body", spec: Spec{Expr: `headers["Content-Type"] contains "json" && vars.id == "7" && body startsWith "{"`},
			obs: Observation{Headers: http.Header{"Content-Type": {"application/json"}}, Vars: map[string]string{"id": "7"}, Body: jsonBody}},
		{name: "expr json nil when not JSON", spec: Spec{Expr: "json == nil"}, obs: Observation{Body: []byte("plain")}},
		{name: "expr via $env", spec: Spec{Expr: `$env.body == "ok"`}, obs: Observation{Body: []byte("ok")}},
		{name: "expr run-time error", spec: Spec{Expr: "json.nil.b == 1"}, obs: Observation{Body: jsonBody},
			want: "expr `json.nil.b == 1` failed: cannot fetch b from <nil> (1:10)"},

		{name: "every failure listed in order",
			spec: Spec{Status: []string{"2xx"}, Latency: time.Second, JSON: map[string]string{"id": "xyz"},
				BodyContains: "hello", Expr: "status == 200"},
			obs: Observation{Status: 503, Latency: 2 * time.Second, Body: jsonBody},
			want: `status 503, want 2xx; latency 2s over 1s; json id = "abc", want "xyz"; ` +
				"body does not contain \"hello\"; expr `status == 200` is false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.spec)
			err := c.Evaluate(&tt.obs, tt.data)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Evaluate:\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

// CertWarning and Evaluate share one rule: valid but too soon is a warning; expired or
// no certificate is a failure (and no warning); enough days is neither.
func TestCertWarning(t *testing.T) {
	cert, _ := selfSigned(t, refNow.Add(3*24*time.Hour))
	certs := []*x509.Certificate{cert}
	tests := []struct {
		name    string
		spec    Spec
		obs     Observation
		warning string // CertWarning's String, "" = nil
		fails   string // Evaluate's error, "" = nil
	}{
		{name: "no check", spec: Spec{Status: []string{"200"}}, obs: Observation{Status: 200, Certs: certs, Now: refNow}},
		{name: "enough days", spec: Spec{CertMinDays: 3}, obs: Observation{Certs: certs, Now: refNow}},
		{name: "3 days left of 14", spec: Spec{CertMinDays: 14}, obs: Observation{Certs: certs, Now: refNow},
			warning: "certificate expires in 3 days (2026-11-28), want at least 14"},
		{name: "1 day left", spec: Spec{CertMinDays: 14}, obs: Observation{Certs: certs, Now: refNow.Add(2 * 24 * time.Hour)},
			warning: "certificate expires in 1 day (2026-11-28), want at least 14"},
		{name: "hours left", spec: Spec{CertMinDays: 14}, obs: Observation{Certs: certs, Now: refNow.Add(71 * time.Hour)},
			warning: "certificate expires in less than a day (2026-11-28), want at least 14"},
		{name: "expired", spec: Spec{CertMinDays: 14}, obs: Observation{Certs: certs, Now: refNow.AddDate(0, 1, 0)},
			fails: "certificate expired on 2026-11-28, want at least 14 days left"},
		{name: "no TLS", spec: Spec{CertMinDays: 14}, obs: Observation{},
			fails: "no certificate (not TLS), want at least 14 days left"},
		{name: "near expiry and a failure", spec: Spec{Status: []string{"200"}, CertMinDays: 14},
			obs:     Observation{Status: 500, Certs: certs, Now: refNow},
			warning: "certificate expires in 3 days (2026-11-28), want at least 14", fails: "status 500, want 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.spec)
			got := ""
			if w := c.CertWarning(&tt.obs); w != nil {
				got = w.String()
				if w.MinDays != 14 || !w.NotAfter.Equal(cert.NotAfter) || w.Subject != "picket test" || w.Issuer != "picket test" {
					t.Errorf("warning %+v", w)
				}
			}
			if got != tt.warning {
				t.Errorf("CertWarning:\n got  %s\n want %s", got, tt.warning)
			}
			fails := ""
			if err := c.Evaluate(&tt.obs, nil); err != nil {
				fails = err.Error()
			}
			if fails != tt.fails {
				t.Errorf("Evaluate:\n got  %s\n want %s", fails, tt.fails)
			}
		})
	}
	var none *Checks
	if none.CertWarning(&Observation{Certs: certs}) != nil {
		t.Error("nil Checks warned")
	}
}

func TestEvaluateNilObservation(t *testing.T) {
	c := mustCompile(t, Spec{Status: []string{"2xx"}})
	if err := c.Evaluate(nil, nil); err == nil || err.Error() != "status 0, want 2xx" {
		t.Errorf("Evaluate(nil) = %v, want status 0 failure", err)
	}
}

func TestCompileErrors(t *testing.T) {
	type fieldErr struct{ field, key, msg string }
	tests := []struct {
		name string
		spec Spec
		want []fieldErr // msg is the exact Error() of the FieldError
	}{
		{name: "bad status", spec: Spec{Status: []string{"6xx", "abc", "99", "200", "600"}}, want: []fieldErr{{"status", "",
			`status: invalid status "6xx": want a code 100-599 or a class 1xx-5xx` + "\n" +
				`invalid status "abc": want a code 100-599 or a class 1xx-5xx` + "\n" +
				`invalid status "99": want a code 100-599 or a class 1xx-5xx` + "\n" +
				`invalid status "600": want a code 100-599 or a class 1xx-5xx`}}},
		{name: "negative latency", spec: Spec{Latency: -time.Second}, want: []fieldErr{{"latency", "",
			"latency: want a positive duration, got -1s"}}},
		{name: "negative cert days", spec: Spec{CertMinDays: -1}, want: []fieldErr{{"cert_min_days", "",
			"cert_min_days: want 0 (no check) or more days, got -1"}}},
		{name: "bad body regex", spec: Spec{BodyMatches: "("}, want: []fieldErr{{"body_matches", "",
			"body_matches: error parsing regexp: missing closing ): `(`"}}},
		{name: "bad header regex and name", spec: Spec{Headers: map[string]string{"X-A": "[", "bad name": "x"}}, want: []fieldErr{
			{"headers", "X-A", `headers "X-A": error parsing regexp: missing closing ]: ` + "`[`"},
			{"headers", "bad name", `headers "bad name": invalid header name "bad name": want letters, digits and !#$%&'*+-.^_` + "`|~"},
		}},
		{name: "bad json template and path", spec: Spec{JSON: map[string]string{"m": "{{.run.id", "$.": "x"}}, want: []fieldErr{
			{"json", "$.", `json "$.": empty JSON path: want a gjson path like items.0.id`},
			{"json", "m", `json "m": template: 1: unclosed action`},
		}},
		{name: "bad body_contains template", spec: Spec{BodyContains: "{{end}}"}, want: []fieldErr{{"body_contains", "",
			"body_contains: template: 1: unexpected {{end}}"}}},
		{name: "expr syntax", spec: Spec{Expr: "status =="}, want: []fieldErr{{"expr", "", "expr: unexpected token EOF (1:9)"}}},
		{name: "expr not boolean", spec: Spec{Expr: "status + 1"}, want: []fieldErr{{"expr", "", "expr: expected bool, but got int"}}},
		{name: "expr unknown name", spec: Spec{Expr: "foo > 1"}, want: []fieldErr{{"expr", "", "expr: unknown name foo (1:1)"}}},
		{name: "expr type error", spec: Spec{Expr: `latency > "2s"`}, want: []fieldErr{{"expr", "",
			"expr: invalid operation: > (mismatched types time.Duration and string) (1:9)"}}},
		{name: "all problems at once", spec: Spec{Status: []string{"abc"}, BodyMatches: "(", Expr: "status"}, want: []fieldErr{
			{"status", "", `status: invalid status "abc": want a code 100-599 or a class 1xx-5xx`},
			{"body_matches", "", "body_matches: error parsing regexp: missing closing ): `(`"},
			{"expr", "", "expr: expected bool, but got int"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs := Compile(tt.spec)
			if c != nil {
				t.Errorf("Compile returned checks along with errors")
			}
			var got []fieldErr
			for _, e := range errs {
				got = append(got, fieldErr{e.Field, e.Key, e.Error()})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Compile errors:\n got  %q\n want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("error %d:\n got  %q\n want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestFieldErrorUnwrapsExprPosition(t *testing.T) {
	_, errs := Compile(Spec{Expr: "status ==\n  nope"})
	if len(errs) != 1 {
		t.Fatalf("errs = %v, want one", errs)
	}
	var fe *file.Error
	if !errors.As(errs[0], &fe) {
		t.Fatalf("errors.As(%v, *file.Error) = false", errs[0])
	}
	if fe.Line != 2 || strings.Contains(errs[0].Error(), "\n") {
		t.Errorf("error %q at line %d, want one line pointing at line 2", errs[0], fe.Line)
	}
}

func TestNeedsBodyAndEmpty(t *testing.T) {
	tests := []struct {
		name       string
		spec       Spec
		needsBody  bool
		emptyCheck bool
	}{
		{name: "nothing", spec: Spec{}, emptyCheck: true},
		{name: "blank expr", spec: Spec{Expr: "  "}, emptyCheck: true},
		{name: "status", spec: Spec{Status: []string{"2xx"}}},
		{name: "latency", spec: Spec{Latency: time.Second}},
		{name: "headers", spec: Spec{Headers: map[string]string{"A": "b"}}},
		{name: "cert", spec: Spec{CertMinDays: 1}},
		{name: "expr on status", spec: Spec{Expr: "status == 200 && headers.A == vars.b"}},
		{name: "json", spec: Spec{JSON: map[string]string{"a": "b"}}, needsBody: true},
		{name: "body_contains", spec: Spec{BodyContains: "x"}, needsBody: true},
		{name: "body_matches", spec: Spec{BodyMatches: "x"}, needsBody: true},
		{name: "expr on json", spec: Spec{Expr: "json != nil"}, needsBody: true},
		{name: "expr on body", spec: Spec{Expr: "len(body) > 1"}, needsBody: true},
		{name: "expr in closure", spec: Spec{Expr: `all([1], {# == 1 && body != ""})`}, needsBody: true},
		{name: "expr on $env", spec: Spec{Expr: `$env["status"] == 200`}, needsBody: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.spec)
			if got := c.NeedsBody(); got != tt.needsBody {
				t.Errorf("NeedsBody() = %v, want %v", got, tt.needsBody)
			}
			if got := c.Empty(); got != tt.emptyCheck {
				t.Errorf("Empty() = %v, want %v", got, tt.emptyCheck)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	c := mustCompile(t, Spec{
		JSON:         map[string]string{"b": "{{.run.id}}", "a": "literal", "c": "{{.vars.x}}"},
		BodyContains: "{{.region.name}}",
	})
	var raws []string
	for _, tp := range c.Templates() {
		raws = append(raws, tp.Raw)
	}
	want := []string{"{{.run.id}}", "{{.vars.x}}", "{{.region.name}}"}
	if strings.Join(raws, "|") != strings.Join(want, "|") {
		t.Errorf("Templates() = %q, want %q", raws, want)
	}
	if got := mustCompile(t, Spec{JSON: map[string]string{"a": "b"}, BodyContains: "x"}).Templates(); len(got) != 0 {
		t.Errorf("Templates() of literals = %v, want none", got)
	}
}

// TestEvaluateConcurrently runs one Checks from several goroutines; with -race it shows
// Evaluate keeps no state in Checks.
func TestEvaluateConcurrently(t *testing.T) {
	c := mustCompile(t, Spec{
		Status: []string{"2xx"}, JSON: map[string]string{"id": "{{.run.id}}"},
		BodyContains: "abc", Expr: "len(json.items) == 1",
	})
	obs := &Observation{Status: 200, Body: []byte(`{"id":"abc","items":[1]}`)}
	data := tmpl.Data{"run": map[string]any{"id": "abc"}}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if err := c.Evaluate(obs, data); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
