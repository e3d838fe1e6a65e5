package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// A cross-host redirect carried custom headers holding secrets (X-Api-Key reached
// another host; Go strips only Authorization). Every header whose value comes from a
// secret is dropped when a redirect changes the host; the others stay.
func TestCrossHostRedirectDropsSecretHeaders(t *testing.T) {
	t.Setenv("PICKET_TEST_REDIRECT_KEY", "s3cr3t-api-key-value")
	var mu sync.Mutex
	got := http.Header{}
	ln, err := net.Listen("tcp", "127.0.0.2:0") // another loopback address: another host
	if err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	other.Listener.Close()
	other.Listener = ln
	other.Start()
	defer other.Close()
	first := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "s3cr3t-api-key-value" {
			http.Error(w, "the first host must get the key", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, other.URL+"/landed", http.StatusFound)
	}))
	tg := targetsFor(t, first.URL, "secrets: {key: {env: PICKET_TEST_REDIRECT_KEY}}\n", `
		- name: redirect
		  timeout: 2s
		  steps:
		    - http: {url: "{{.region.api}}/", follow_redirects: true, headers: {X-Api-Key: "{{.secret.key}}", X-Plain: "kept"}}
		      expect: {status: [200]}
	`)[0]
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusUp {
		t.Fatalf("want up, got %s: %s", res.Status, res.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if v := got.Get("X-Api-Key"); v != "" {
		t.Fatalf("the other host got X-Api-Key %q: a secret crossed hosts", v)
	}
	if got.Get("X-Plain") != "kept" {
		t.Fatalf("a header without a secret was dropped too: %v", got)
	}
}

// An http step resolved a .invalid name through the system resolver; like the other
// kinds it is refused without a query.
func TestHTTPRefusesInvalidNamesWithoutALookup(t *testing.T) {
	tg := targetFor(t, "http://picket.invalid", `
		- name: invalid
		  timeout: 2s
		  steps:
		    - http: {url: "{{.region.api}}/"}
	`)
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusDown || !strings.Contains(res.Error, "no query sent") {
		t.Fatalf("want down with the .invalid reason, got %s: %s", res.Status, res.Error)
	}
}
