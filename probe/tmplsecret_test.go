package probe

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// A secret sent through a template helper ({{base64 .secret.x}} for Basic auth) is not
// in the failure reason when the server echoes the header back in its error body.
func TestBase64OfASecretIsRedactedFromReasons(t *testing.T) {
	const secret = "base64-secret-MARKER-91c2"
	t.Setenv("PICKET_TEST_B64_SECRET", secret)
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused: "+r.Header.Get("Authorization")+" and "+r.Header.Get("X-Sig"), http.StatusForbidden)
	}))
	tg := targetsFor(t, srv.URL, "secrets: {key: {env: PICKET_TEST_B64_SECRET}}\n", `
		- name: signed
		  timeout: 2s
		  steps:
		    - http: {url: "{{.region.api}}/", headers: {Authorization: "Basic {{base64 .secret.key}}", X-Sig: "{{hmac \"sha256\" .secret.key \"m\"}}"}}
		      expect: {status: [200]}
	`)[0]
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusDown || !strings.Contains(res.Error, "status 403") {
		t.Fatalf("want down with 403, got %s: %s", res.Status, res.Error)
	}
	for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawStdEncoding.EncodeToString([]byte(secret))} {
		if strings.Contains(res.Error, form) {
			t.Errorf("the reason shows the secret as %q: %s", form, res.Error)
		}
	}
	if !strings.Contains(res.Error, "Basic [redacted]") {
		t.Errorf("reason %q: want the header's secret part redacted", res.Error)
	}
}
