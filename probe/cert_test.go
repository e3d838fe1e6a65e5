package probe

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A certificate that is valid but expires sooner than cert_min_days wants is a warning
// on the result, not a failure: the run stays up (or degraded by its timing), and only
// an expired or otherwise invalid certificate is down.
func TestCertNearExpiryIsAWarningNotDown(t *testing.T) {
	now := time.Now()
	soon := now.Add(5*24*time.Hour + time.Hour).Truncate(time.Second) // 5 days left
	ca, caKey, caFile := tlsTestCA(t)
	expiring := tlsTestLeaf(t, ca, caKey, soon)
	expired := tlsTestLeaf(t, ca, caKey, now.Add(-time.Hour))
	_, _, selfSigned := makeCert(t, now.Add(-time.Hour), soon, false, nil, nil)
	trust := fmt.Sprintf("ca_file: %q", caFile)
	slow := func(w http.ResponseWriter, r *http.Request) { time.Sleep(60 * time.Millisecond); answerOK(w, r) }
	fails := func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }
	httpJourney := func(url, tlsKeys, expect, extra string) string {
		return fmt.Sprintf(`
			- name: j
			  timeout: 2s
			  %s
			  steps:
			    - {name: get, http: {url: %q, tls: {%s}}, expect: {%s}}
		`, extra, url, tlsKeys, expect)
	}
	cases := []struct {
		name        string
		journey     func(t *testing.T) string
		status      Status
		errPrefix   string // the result's error, or its start ("" = none)
		warningStep string // "" = no warning
	}{
		{
			name: "http: 5 days left, cert_min_days 14",
			journey: func(t *testing.T) string {
				srv := startTLSServer(t, http.HandlerFunc(answerOK), &expiring)
				return httpJourney(srv.URL, trust, "status: [200], cert_min_days: 14", "")
			},
			status: StatusUp, warningStep: "get",
		},
		{
			name: "tls: 5 days left, cert_min_days 14",
			journey: func(t *testing.T) string {
				addr := tcpTLSListen(t, tlsConfigOf(expiring), nil)
				return fmt.Sprintf(`
					- name: j
					  timeout: 2s
					  steps:
					    - {name: check, tls: {address: %q, %s}, expect: {cert_min_days: 14}}
				`, addr, trust)
			},
			status: StatusUp, warningStep: "check",
		},
		{
			name: "tls: verification off still judges cert_min_days",
			journey: func(t *testing.T) string {
				addr := tcpTLSListen(t, tlsConfigOf(selfSigned), nil)
				return fmt.Sprintf(`
					- name: j
					  timeout: 2s
					  steps:
					    - {name: check, tls: {address: %q, insecure_skip_verify: true}, expect: {cert_min_days: 14}}
				`, addr)
			},
			status: StatusUp, warningStep: "check",
		},
		{
			name: "slow and near expiry: degraded, with the warning",
			journey: func(t *testing.T) string {
				srv := startTLSServer(t, http.HandlerFunc(slow), &expiring)
				return httpJourney(srv.URL, trust, "cert_min_days: 14", "degraded_after: 20ms")
			},
			status: StatusDegraded, errPrefix: "journey took", warningStep: "get",
		},
		{
			name: "another expectation fails too: down, with the warning",
			journey: func(t *testing.T) string {
				srv := startTLSServer(t, http.HandlerFunc(fails), &expiring)
				return httpJourney(srv.URL, trust, "status: [200], cert_min_days: 14", "")
			},
			status: StatusDown, errPrefix: "step get: status 500, want 200", warningStep: "get",
		},
		{
			name: "expired: down (verification fails)",
			journey: func(t *testing.T) string {
				srv := startTLSServer(t, http.HandlerFunc(answerOK), &expired)
				return httpJourney(srv.URL, trust, "cert_min_days: 14", "")
			},
			status: StatusDown, errPrefix: "step get: tls: failed to verify certificate: x509: certificate has expired",
		},
		{
			name: "expired, verification off: down by cert_min_days",
			journey: func(t *testing.T) string {
				srv := startTLSServer(t, http.HandlerFunc(answerOK), &expired)
				return httpJourney(srv.URL, "insecure_skip_verify: true", "cert_min_days: 14", "")
			},
			status: StatusDown, errPrefix: "step get: certificate expired on ",
		},
		{
			name: "tls: expired: down",
			journey: func(t *testing.T) string {
				addr := tcpTLSListen(t, tlsConfigOf(expired), nil)
				return fmt.Sprintf(`
					- name: j
					  timeout: 2s
					  steps:
					    - {name: check, tls: {address: %q, %s}, expect: {cert_min_days: 14}}
				`, addr, trust)
			},
			status: StatusDown, errPrefix: "step check: TLS handshake: bad certificate: x509: certificate has expired",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := newRunner(t).Run(t.Context(), targetFor(t, "unused", tc.journey(t)))
			if res.Status != tc.status {
				t.Fatalf("status %s (%s), want %s", res.Status, res.Error, tc.status)
			}
			if !strings.HasPrefix(res.Error, tc.errPrefix) || (tc.errPrefix == "" && res.Error != "") {
				t.Errorf("error %q, want it to start with %q", res.Error, tc.errPrefix)
			}
			wantCertWarning(t, res, tc.warningStep, soon)
		})
	}
}

// wantCertWarning checks the result's warning: one, of step, for the leaf expiring at
// notAfter with 5 days left; none when step is "".
func wantCertWarning(t *testing.T, res Result, step string, notAfter time.Time) {
	t.Helper()
	if step == "" {
		if len(res.CertWarnings) != 0 || res.EarliestCertWarning() != nil {
			t.Errorf("cert warnings %+v, want none", res.CertWarnings)
		}
		return
	}
	want := CertWarning{Step: step, NotAfter: notAfter, DaysLeft: 5, MinDays: 14, Subject: "picket test", Issuer: "picket test"}
	if len(res.CertWarnings) != 1 || !sameWarning(res.CertWarnings[0], want) {
		t.Fatalf("cert warnings %+v, want [%+v]", res.CertWarnings, want)
	}
	if w := res.EarliestCertWarning(); w == nil || !sameWarning(*w, want) {
		t.Errorf("earliest %+v", w)
	}
	msg := fmt.Sprintf("step %s: certificate expires in 5 days (%s), want at least 14", step, notAfter.UTC().Format(time.DateOnly))
	if got := res.CertWarnings[0].Message(); got != msg {
		t.Errorf("message %q, want %q", got, msg)
	}
	var sr *StepResult
	for i := range res.Steps {
		if res.Steps[i].Name == step {
			sr = &res.Steps[i]
		}
	}
	if sr == nil || sr.CertWarning == nil || !sameWarning(*sr.CertWarning, want) || !sr.CertExpiry.Equal(notAfter) {
		t.Errorf("step %+v: want its warning and expiry", sr)
	}
	if res.Status != StatusDown && (sr.Status != StatusUp || sr.Error != "") {
		t.Errorf("step %s: %s %q, want up without error", step, sr.Status, sr.Error)
	}
}

func tlsConfigOf(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func sameWarning(a, b CertWarning) bool {
	na, nb := a.NotAfter, b.NotAfter
	a.NotAfter, b.NotAfter = time.Time{}, time.Time{}
	return a == b && na.Equal(nb)
}
