package expect

import (
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestProtocolChecks(t *testing.T) {
	dnsOK := &DNSInfo{Rcode: "NOERROR", Answers: []string{"192.0.2.1", "192.0.2.2"}, TTLs: []uint32{300, 60}, Authoritative: true}
	cases := []struct {
		name string
		spec Spec
		obs  Observation
		want string // "" passes
	}{
		{"rcode ok", Spec{Rcode: "noerror"}, Observation{DNS: dnsOK}, ""},
		{"rcode wrong", Spec{Rcode: "NOERROR"}, Observation{DNS: &DNSInfo{Rcode: "NXDOMAIN"}}, "rcode NXDOMAIN, want NOERROR"},
		{"answers regex", Spec{Answers: []string{`^192\.0\.2\.2$`}}, Observation{DNS: dnsOK}, ""},
		{"answers regex missing", Spec{Answers: []string{`^10\.`}}, Observation{DNS: dnsOK}, "no answer matches `^10\\.` (answers: [192.0.2.1, 192.0.2.2])"},
		{"answers exact in any order", Spec{AnswersExact: []string{"192.0.2.2", "192.0.2.1"}}, Observation{DNS: dnsOK}, ""},
		{"answers exact differ", Spec{AnswersExact: []string{"192.0.2.1"}}, Observation{DNS: dnsOK}, "answers [192.0.2.1, 192.0.2.2], want exactly [192.0.2.1]"},
		{"min ttl", Spec{MinTTL: 2 * time.Minute}, Observation{DNS: dnsOK}, "TTL 60s of 192.0.2.2, want at least 2m0s"},
		{"authoritative", Spec{Authoritative: ptr(false)}, Observation{DNS: dnsOK}, "authoritative true, want false"},
		{"dns check on a non-dns step", Spec{Rcode: "NOERROR"}, Observation{}, "no DNS answer, want a DNS step"},
		{"tls version", Spec{TLSVersion: []string{"1.3"}}, Observation{TLS: &TLSInfo{Version: "1.2"}}, "TLS version 1.2, want 1.3"},
		{"tls version ok", Spec{TLSVersion: []string{"1.2", "1.3"}}, Observation{TLS: &TLSInfo{Version: "1.3"}}, ""},
		{"ocsp", Spec{OCSPStapled: ptr(true)}, Observation{TLS: &TLSInfo{Version: "1.3"}}, "OCSP stapled false, want true"},
		{"no tls", Spec{TLSVersion: []string{"1.3"}}, Observation{}, "no TLS handshake, want TLS"},
		{"grpc", Spec{GRPCStatus: "serving"}, Observation{GRPCStatus: "NOT_SERVING"}, "grpc health NOT_SERVING, want SERVING"},
		{"grpc ok", Spec{GRPCStatus: "SERVING"}, Observation{GRPCStatus: "SERVING"}, ""},
		{"loss", Spec{MaxLoss: ptr(0.2)}, Observation{Ping: &PingInfo{Sent: 4, Received: 2, Loss: 0.5}}, "packet loss 50% (2 of 4 lost), want at most 20%"},
		{"rtt", Spec{MaxRTT: time.Millisecond}, Observation{Ping: &PingInfo{Sent: 3, Received: 3, RTTAvg: 5 * time.Millisecond}}, "round trip 5ms on average, want at most 1ms"},
		{"ping ok", Spec{MaxLoss: ptr(0.0), MaxRTT: time.Second}, Observation{Ping: &PingInfo{Sent: 3, Received: 3, RTTAvg: time.Millisecond}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checks, errs := Compile(c.spec)
			if len(errs) > 0 {
				t.Fatalf("compile: %v", errs)
			}
			if checks.Empty() {
				t.Fatal("a protocol expectation must make the checks non-empty")
			}
			err := checks.Evaluate(&c.obs, nil)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("want pass, got %v", err)
			case c.want != "" && (err == nil || err.Error() != c.want):
				t.Errorf("got %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestProtocolCompileErrors(t *testing.T) {
	_, errs := Compile(Spec{Rcode: "MAYBE", Answers: []string{"(("}, TLSVersion: []string{"2.0"}, GRPCStatus: "GREAT", MaxLoss: ptr(1.5), MinTTL: -time.Second})
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	if got := strings.Join(fields, ","); got != "rcode,answers,min_ttl,tls_version,grpc_status,max_loss" {
		t.Errorf("fields %s (errors %v)", got, errs)
	}
}
