package probe

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/expect"
)

// icmpStep compiles a journey with one icmp step pinging {{.region.api}}; spec is the
// rest of the step's icmp: flow mapping.
func icmpStep(t testing.TB, host, spec string) (*config.Step, *config.Target) {
	t.Helper()
	j := "- name: ping\n  steps:\n    - name: ping\n      icmp: {host: \"{{.region.api}}\", " + spec + "}\n"
	tg := targetFor(t, host, j)
	return tg.Steps[0], tg
}

func icmpProbe(t testing.TB, p *ICMPProber, host, spec string, timeout time.Duration) *Exchange {
	t.Helper()
	step, tg := icmpStep(t, host, spec)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx, step, tg.TemplateData(nil, nil))
}

func icmpPermissionDenied(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

func icmpModeSpec(privileged bool) string {
	if privileged {
		return "privileged: true"
	}
	return "privileged: false"
}

// icmpSkipUnlessPermitted tries one ping in the mode and skips the test, saying why,
// when the kernel refuses that mode's socket here.
func icmpSkipUnlessPermitted(t *testing.T, host string, privileged bool) {
	t.Helper()
	ex := icmpProbe(t, NewICMPProber(), host, "count: 1, "+icmpModeSpec(privileged), 2*time.Second)
	if !icmpPermissionDenied(ex.Err) {
		return
	}
	if privileged {
		t.Skipf("the kernel forbids raw ICMP sockets to this process (uid %d, no CAP_NET_RAW): %v", os.Getuid(), ex.Err)
	}
	groups, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	t.Skipf("the kernel forbids unprivileged ping here: net.ipv4.ping_group_range is %q and gid %d is outside it",
		strings.Join(strings.Fields(string(groups)), " "), os.Getgid())
}

// icmpPermittedMode returns a mode this machine allows, unprivileged first.
func icmpPermittedMode(t *testing.T) bool {
	t.Helper()
	for _, privileged := range []bool{false, true} {
		ex := icmpProbe(t, NewICMPProber(), "127.0.0.1", "count: 1, "+icmpModeSpec(privileged), 2*time.Second)
		if !icmpPermissionDenied(ex.Err) {
			return privileged
		}
	}
	t.Skip("the kernel forbids both unprivileged and privileged ping here")
	return false
}

func icmpHaveIPv6Loopback() bool {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestICMPPingLoopback(t *testing.T) {
	for _, tc := range []struct {
		name, host string
		privileged bool
	}{
		{"unprivileged IPv4", "127.0.0.1", false},
		{"unprivileged IPv6", "::1", false},
		{"privileged IPv4", "127.0.0.1", true},
		{"privileged IPv6", "::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.host, ":") && !icmpHaveIPv6Loopback() {
				t.Skip("no IPv6 loopback (::1) on this machine")
			}
			icmpSkipUnlessPermitted(t, tc.host, tc.privileged)
			ex := icmpProbe(t, NewICMPProber(), tc.host, "count: 3, interval: 10ms, "+icmpModeSpec(tc.privileged), 2*time.Second)
			if ex.Err != nil {
				t.Fatal(ex.Err)
			}
			t.Logf("%s", ex.Obs.Body)
			p := ex.Obs.Ping
			if p == nil || p.Sent != 3 || p.Received != 3 || p.Loss != 0 || p.RTTAvg <= 0 || p.RTTMax < p.RTTAvg {
				t.Fatalf("ping %+v: want 3 sent, 3 received, no loss, round trips measured", p)
			}
			if want := tc.host + ": 3 sent, 3 received, 0% loss, rtt avg "; !strings.HasPrefix(string(ex.Obs.Body), want) {
				t.Errorf("body %q, want it to start %q", ex.Obs.Body, want)
			}
			for _, k := range []string{"sent", "received", "loss", "rtt_avg_ms", "rtt_max_ms"} {
				if ex.Info[k] == "" {
					t.Errorf("info has no %s: %v", k, ex.Info)
				}
			}
			if ex.Info["sent"] != "3" || ex.Info["received"] != "3" || ex.Info["loss"] != "0" {
				t.Errorf("info %v, want 3 sent, 3 received, loss 0", ex.Info)
			}
			if ex.Phases.DNS != 0 || ex.Phases.Processing <= 0 || ex.Obs.Latency < ex.Phases.Processing {
				t.Errorf("phases %+v, latency %s: want no DNS for a literal, processing within latency", ex.Phases, ex.Obs.Latency)
			}
		})
	}
}

// Where the kernel refuses unprivileged ping, the reason names the mode and the fix.
func TestICMPUnprivilegedRefusalSaysTheFix(t *testing.T) {
	ex := icmpProbe(t, NewICMPProber(), "127.0.0.1", "count: 1", 2*time.Second)
	if !icmpPermissionDenied(ex.Err) {
		t.Skipf("unprivileged ping is allowed here (err %v): nothing to refuse", ex.Err)
	}
	t.Logf("error: %v", ex.Err)
	for _, w := range []string{"unprivileged ping", "net.ipv4.ping_group_range", "privileged: true"} {
		if !strings.Contains(ex.Err.Error(), w) {
			t.Errorf("error %q does not say %q", ex.Err, w)
		}
	}
	if ex.Obs.Ping != nil {
		t.Errorf("a refused socket reports a ping result %+v", ex.Obs.Ping)
	}
}

func TestICMPExpectations(t *testing.T) {
	mode := icmpModeSpec(icmpPermittedMode(t))
	ex := icmpProbe(t, NewICMPProber(), "127.0.0.1", "count: 2, interval: 10ms, "+mode, 2*time.Second)
	if ex.Err != nil {
		t.Fatal(ex.Err)
	}
	noLoss := 0.0
	for _, tc := range []struct {
		name  string
		spec  expect.Spec
		fails string
	}{
		{"max_rtt 1s", expect.Spec{MaxRTT: time.Second}, ""},
		{"max_loss 0", expect.Spec{MaxLoss: &noLoss}, ""},
		{"max_rtt 1ns", expect.Spec{MaxRTT: time.Nanosecond}, "want at most 1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checks, errs := expect.Compile(tc.spec)
			if errs != nil {
				t.Fatal(errs)
			}
			err := checks.Evaluate(&ex.Obs, nil)
			switch {
			case tc.fails == "" && err != nil:
				t.Errorf("want a pass, got %v", err)
			case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
				t.Errorf("want a failure saying %q, got %v", tc.fails, err)
			}
		})
	}
}

// The step's deadline stops a run that would take longer; the pings sent by then are
// judged, none of them is an error by itself.
func TestICMPDeadlineBoundsTheRun(t *testing.T) {
	mode := icmpModeSpec(icmpPermittedMode(t))
	start := time.Now()
	ex := icmpProbe(t, NewICMPProber(), "127.0.0.1", "count: 50, interval: 100ms, "+mode, 250*time.Millisecond)
	took := time.Since(start)
	if took > time.Second {
		t.Errorf("took %s with a 250ms deadline", took)
	}
	if ex.Err != nil {
		t.Fatalf("want the pings sent by the deadline judged, got %v", ex.Err)
	}
	if p := ex.Obs.Ping; p == nil || p.Sent < 1 || p.Sent > 4 || p.Received != p.Sent {
		t.Errorf("ping %+v: want the 2 to 3 pings sent in 250ms, all answered", ex.Obs.Ping)
	}
}

func TestICMPVerdictOnLoss(t *testing.T) {
	sendErr := errors.New("sendto: network is unreachable")
	for _, tc := range []struct {
		name       string
		info       expect.PingInfo
		lossJudged bool
		sendErr    error
		want       string
	}{
		{"all answered", expect.PingInfo{Sent: 3, Received: 3}, false, nil, ""},
		{"some lost", expect.PingInfo{Sent: 3, Received: 1, Loss: 2.0 / 3}, false, nil, ""},
		{"all lost, no max_loss", expect.PingInfo{Sent: 3, Loss: 1}, false, nil, "no reply to 3 pings"},
		{"all lost, max_loss judges", expect.PingInfo{Sent: 3, Loss: 1}, true, nil, ""},
		{"all lost after send errors", expect.PingInfo{Sent: 2, Loss: 1}, false, sendErr, "no reply to 2 pings (last send error: sendto: network is unreachable)"},
		{"nothing sent", expect.PingInfo{}, true, sendErr, "no ping could be sent: sendto: network is unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pingVerdict(&tc.info, tc.lossJudged, tc.sendErr)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// icmpRecordingResolver resolves through the Go resolver but sends every query to
// server (a loopback address), recording the name server it was asked to use.
type icmpRecordingResolver struct {
	mu    sync.Mutex
	asked []string
}

func (r *icmpRecordingResolver) resolver(server string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		r.mu.Lock()
		r.asked = append(r.asked, address)
		r.mu.Unlock()
		if server == "" {
			return nil, errors.New("test resolver: no query may leave the machine")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

func (r *icmpRecordingResolver) queries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.asked...)
}

// .invalid never resolves (RFC 6761), and the prober says so without asking any name
// server: Go's resolver would send the query to the network's (on this machine, the one
// in /etc/resolv.conf, off loopback).
func TestICMPInvalidHostSendsNothing(t *testing.T) {
	rec := &icmpRecordingResolver{}
	p := &ICMPProber{resolver: rec.resolver("")}
	for _, host := range []string{"intake.picket.invalid", "INTAKE.Picket.Invalid."} {
		ex := icmpProbe(t, p, host, "count: 1", 2*time.Second)
		if ex.Err == nil || !strings.Contains(ex.Err.Error(), "no such host") || !strings.Contains(ex.Err.Error(), "RFC 6761") {
			t.Errorf("%s: want a no-such-host error, got %v", host, ex.Err)
		}
		if ex.Obs.Ping != nil || ex.Phases.DNS != 0 {
			t.Errorf("%s: pinged or resolved: ping %+v, dns %s", host, ex.Obs.Ping, ex.Phases.DNS)
		}
	}
	if q := rec.queries(); len(q) != 0 {
		t.Errorf("the resolver was asked to query %v, want no query at all", q)
	}
}

// A name the DNS says does not exist fails in the resolver, before any ping. The name
// server is a miekg/dns server on 127.0.0.1, so no query leaves loopback either.
func TestICMPUnresolvableHost(t *testing.T) {
	server, names := icmpNXDomainServer(t)
	rec := &icmpRecordingResolver{}
	p := &ICMPProber{resolver: rec.resolver(server)}
	ex := icmpProbe(t, p, "gone.picket.test", "count: 1", 2*time.Second)
	if ex.Err == nil || !strings.HasPrefix(ex.Err.Error(), "resolve: lookup gone.picket.test") || !strings.Contains(ex.Err.Error(), "no such host") {
		t.Fatalf("want a resolve error saying no such host, got %v", ex.Err)
	}
	if ex.Obs.Ping != nil || ex.Phases.DNS <= 0 {
		t.Errorf("ping %+v, dns %s: want a timed lookup and no ping", ex.Obs.Ping, ex.Phases.DNS)
	}
	if got := names(); len(got) == 0 || got[0] != "gone.picket.test." {
		t.Errorf("the loopback name server saw %v, want gone.picket.test.", got)
	}
	if len(rec.queries()) == 0 {
		t.Error("the resolver never dialed: the lookup did not go through the DNS")
	}
}

// icmpNXDomainServer answers NXDOMAIN to every query on 127.0.0.1 (UDP) and returns
// its address and the names it was asked; it is shut down at cleanup.
func icmpNXDomainServer(t testing.TB) (string, func() []string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		names []string
	)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) > 0 {
			mu.Lock()
			names = append(names, req.Question[0].Name)
			mu.Unlock()
		}
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-served
	})
	return pc.LocalAddr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

func TestICMPBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, icmp, want string
	}{
		{"no host", `{count: 3}`, "icmp.host is required"},
		{"too many pings", `{host: 127.0.0.1, count: 101}`, "icmp.count must be 1 to 100"},
		{"negative count", `{host: 127.0.0.1, count: -1}`, "icmp.count must be 1 to 100"},
		{"unknown key", `{host: 127.0.0.1, privileges: true}`, "privileges"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "regions:\n  r1: {}\nproducts:\n  - name: p\n    journeys:\n      - name: j\n        steps:\n          - name: s\n            icmp: " + tc.icmp + "\n"
			_, err := config.Parse("test.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a load error saying %q, got %v", tc.want, err)
			}
		})
	}
}
