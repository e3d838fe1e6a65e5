package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

var _ Prober = (*ICMPProber)(nil)

// icmpReplyWait is how long after the last echo request a reply still counts. A probe
// stops then rather than at the step's deadline, so one lost packet does not hold a
// journey for its whole timeout; the ctx deadline still wins when it comes first.
const icmpReplyWait = 2 * time.Second

// ICMPProber pings a host with github.com/prometheus-community/pro-bing: unprivileged
// (an ICMP datagram socket, which Linux allows to the groups in
// net.ipv4.ping_group_range) unless the step asks for privileged (raw socket) mode. It
// holds nothing between probes.
type ICMPProber struct {
	resolver *net.Resolver // net.DefaultResolver; tests point it at a loopback server
}

// NewICMPProber returns a ping prober that resolves with net.DefaultResolver.
func NewICMPProber() *ICMPProber { return &ICMPProber{resolver: net.DefaultResolver} }

// Probe sends step.ICMP.Count echo requests, step.ICMP.Interval apart; ctx bounds it.
func (p *ICMPProber) Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange {
	c := step.ICMP
	ex := &Exchange{}
	start := time.Now()
	defer func() { ex.Obs.Latency = time.Since(start) }()

	host, err := c.Host.Render(data)
	if err != nil {
		ex.Err = fmt.Errorf("host: %w", err)
		return ex
	}
	ips, took, err := probeLookup(ctx, p.resolver, host)
	ex.Phases.DNS = took
	if err != nil {
		ex.Err = err
		return ex
	}
	ip := ips[0]

	pinger := newPinger(ctx, c, &ip)
	var sendErr error // the last failed send; written by the pinger's loop, read after Run
	pinger.OnSendError = func(_ *probing.Packet, err error) { sendErr = err }
	runStart := time.Now()
	runErr := pinger.RunWithContext(ctx)
	end := time.Now()
	ex.Phases.Processing = end.Sub(runStart)

	stats := pinger.Statistics()
	if err := pingRunError(ctx, runErr, c.Privileged, stats.PacketsSent); err != nil {
		ex.Err = err
		return ex
	}
	info := pingInfo(stats)
	ex.Obs.Ping = info
	ex.Obs.Body = []byte(pingSummary(host, ip, info))
	ex.Obs.Now = end
	ex.Info = pingFacts(info)
	ex.Err = pingVerdict(info, step.Checks.HasMaxLoss(), sendErr)
	return ex
}

func newPinger(ctx context.Context, c *config.ICMPCheck, ip *net.IPAddr) *probing.Pinger {
	pinger := probing.New(ip.String())
	pinger.SetIPAddr(ip)
	pinger.SetPrivileged(c.Privileged)
	pinger.SetLogger(probing.NoopLogger{}) // failures come back in the Exchange
	pinger.Count = c.Count
	pinger.Interval = c.Interval
	pinger.RecordRtts, pinger.RecordTTLs = false, false // only the summary is kept
	pinger.Timeout = time.Duration(c.Count-1)*c.Interval + icmpReplyWait
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < pinger.Timeout {
		pinger.Timeout = max(time.Until(dl), time.Millisecond)
	}
	return pinger
}

// pingRunError turns what the pinger's run returned into the Exchange's error. A
// deadline reached after some pings went out is no error: the pings not answered by
// then count as lost, and the loss is judged like any other.
func pingRunError(ctx context.Context, err error, privileged bool, sent int) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, os.ErrPermission) {
		return pingPermissionError(privileged, err)
	}
	if ctx.Err() != nil {
		switch {
		case !errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("cancelled: %w", ctx.Err())
		case sent > 0:
			return nil
		default:
			return fmt.Errorf("timeout: no ping sent before the deadline (%w)", context.DeadlineExceeded)
		}
	}
	return fmt.Errorf("ping (%s mode): %w", pingMode(privileged), describeTransportError(ctx, err))
}

// pingPermissionError says which mode the kernel refused and what fixes it.
func pingPermissionError(privileged bool, err error) error {
	if privileged {
		return fmt.Errorf("privileged ping (raw ICMP socket) not permitted: it needs root or CAP_NET_RAW "+
			"(setcap cap_net_raw+ep on the binary), or use unprivileged mode (privileged: false): %w", err)
	}
	groups := "unreadable"
	if b, rerr := os.ReadFile("/proc/sys/net/ipv4/ping_group_range"); rerr == nil {
		groups = strings.Join(strings.Fields(string(b)), " ")
	}
	return fmt.Errorf("unprivileged ping (ICMP datagram socket) not permitted: net.ipv4.ping_group_range is %q "+
		"and must include this process's group %d (sysctl net.ipv4.ping_group_range=\"0 2147483647\"), "+
		"or set privileged: true (needs root or CAP_NET_RAW): %w", groups, os.Getgid(), err)
}

func pingMode(privileged bool) string {
	if privileged {
		return "privileged"
	}
	return "unprivileged"
}

func pingInfo(s *probing.Statistics) *expect.PingInfo {
	info := &expect.PingInfo{Sent: s.PacketsSent, Received: s.PacketsRecv, RTTAvg: s.AvgRtt, RTTMax: s.MaxRtt}
	if info.Sent > 0 {
		info.Loss = max(0, float64(info.Sent-info.Received)/float64(info.Sent))
	}
	return info
}

// pingVerdict fails a run with no reply at all, unless the step's max_loss is there to
// judge loss (a step may expect a host to be unreachable, or tolerate a bad minute).
func pingVerdict(info *expect.PingInfo, lossJudged bool, sendErr error) error {
	switch {
	case info.Sent == 0 && sendErr != nil:
		return fmt.Errorf("no ping could be sent: %w", sendErr)
	case info.Received > 0 || lossJudged:
		return nil
	case sendErr != nil:
		return fmt.Errorf("no reply to %d pings (last send error: %w)", info.Sent, sendErr)
	default:
		return fmt.Errorf("no reply to %d pings", info.Sent)
	}
}

func pingSummary(host string, ip net.IPAddr, p *expect.PingInfo) string {
	who := ip.String()
	if host != who {
		who = host + " (" + who + ")"
	}
	return fmt.Sprintf("%s: %d sent, %d received, %s%% loss, rtt avg %s ms, max %s ms",
		who, p.Sent, p.Received, strconv.FormatFloat(p.Loss*100, 'g', 3, 64), ms(p.RTTAvg), ms(p.RTTMax))
}

func pingFacts(p *expect.PingInfo) map[string]string {
	return map[string]string{
		"sent":       strconv.Itoa(p.Sent),
		"received":   strconv.Itoa(p.Received),
		"loss":       strconv.FormatFloat(p.Loss, 'g', 3, 64),
		"rtt_avg_ms": ms(p.RTTAvg),
		"rtt_max_ms": ms(p.RTTMax),
	}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}
