package tmpl

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func render(t *testing.T, raw string, data Data) (string, error) {
	t.Helper()
	tp, err := Parse("t", raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return tp.Render(data)
}

// The helpers for signed requests, against published test vectors.
func TestSigningHelpers(t *testing.T) {
	data := Data{
		"secret": map[string]string{"jefe": "Jefe", "aws": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		"vars":   map[string]string{"msg": "what do ya want for nothing?", "abc": "abc"},
	}
	for _, tc := range []struct{ name, raw, want string }{
		{"sha256 (FIPS 180-2)", `{{sha256 .vars.abc}}`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"hmac sha256 (RFC 4231 case 2)", `{{hmac "sha256" .secret.jefe .vars.msg}}`, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"hmac sha512 (RFC 4231 case 2)", `{{hmac "sha512" .secret.jefe .vars.msg}}`,
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
		{"hmac sha1 (RFC 2202 case 2)", `{{hmac "sha1" .secret.jefe .vars.msg}}`, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{"a MAC's bytes in base64", `{{hmac "sha256" .secret.jefe .vars.msg | base64}}`, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="},
		{"a string in base64 and hex", `{{base64 "user:pass"}} {{hex .vars.abc}}`, "dXNlcjpwYXNz 616263"},
		// AWS Signature Version 4's derived signing key, from AWS's documented example.
		{"hmac with a digest as key (SigV4)",
			`{{hmac "sha256" (hmac "sha256" (hmac "sha256" (hmac "sha256" (printf "AWS4%s" .secret.aws) "20150830") "us-east-1") "iam") "aws4_request"}}`,
			"c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"},
	} {
		got, err := render(t, tc.raw, data)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v\nwant %q", tc.name, got, err, tc.want)
		}
	}
}

func TestNowIsTheTimeOfRendering(t *testing.T) {
	before := time.Now().Unix()
	got, err := render(t, `{{now.Unix}}`, nil)
	after := time.Now().Unix()
	n, convErr := strconv.ParseInt(got, 10, 64)
	if err != nil || convErr != nil || n < before || n > after {
		t.Errorf("now.Unix = %q (%v), want between %d and %d", got, err, before, after)
	}
	if got, err := render(t, `{{now.UTC.Format "2006"}}`, nil); err != nil || len(got) != 4 {
		t.Errorf("now.UTC.Format: %q, %v", got, err)
	}
}

func TestSigningHelpersRefuseWhatTheyCannotSign(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`{{hmac "md5" "k" "m"}}`, `unknown algorithm "md5"`},
		{`{{sha256 .vars}}`, "want a string or a digest"},
	} {
		_, err := render(t, tc.raw, Data{"vars": map[string]string{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.raw, err, tc.want)
		}
	}
}
