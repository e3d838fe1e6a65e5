package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/tmpl"
)

var _ Prober = (*GRPCProber)(nil)

// GRPCProber calls the standard grpc.health.v1 Check. Like the HTTP prober it opens a
// fresh connection for every probe, so resolve, connect and TLS are measured (and can
// fail) every time; it holds nothing between probes.
type GRPCProber struct{}

// NewGRPCProber returns a gRPC health prober.
func NewGRPCProber() *GRPCProber { return &GRPCProber{} }

// Probe checks the health of step.GRPC.Service at step.GRPC.Address; ctx bounds it all.
func (p *GRPCProber) Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange {
	g := step.GRPC
	ex := &Exchange{Info: map[string]string{"service": g.Service}}
	start := time.Now()
	defer func() { ex.Obs.Latency = time.Since(start) }()

	addr, err := g.Address.Render(data)
	if err != nil {
		ex.Err = fmt.Errorf("address: %w", err)
		return ex
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err) // its text repeats the address
		}
		ex.Err = fmt.Errorf("address %q: want host:port: %w", addr, err)
		return ex
	}
	ips, took, err := probeLookup(ctx, net.DefaultResolver, host)
	ex.Phases.DNS = took
	if err != nil {
		ex.Err = err
		return ex
	}

	tr := &grpcTrace{usesTLS: g.TLS != nil}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpcDialOptions(ctx, tr, g.TLS, host, ips, port)...)
	if err != nil {
		ex.Err = fmt.Errorf("grpc client for %s: %w", addr, err)
		return ex
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: g.Service})
	end := time.Now()
	tr.fill(ex, end)
	ex.Wire.GRPCCode = int(status.Code(err)) // 0 for nil; Unknown for an error that is not a status

	name, err := grpcHealthStatus(resp, err)
	if err != nil {
		ex.Err = describeGRPCError(ctx, err, tr)
		return ex
	}
	ex.Obs.GRPCStatus = name
	ex.Obs.Body = []byte(name)
	ex.Obs.Now = end
	ex.Info["grpc_status"] = name
	return ex
}

// grpcDialOptions connects to the already resolved ips (the address stays the
// authority, so TLS and :authority see the name), never through a proxy, and records
// connect and TLS times in tr.
func grpcDialOptions(ctx context.Context, tr *grpcTrace, tc *tls.Config, host string, ips []net.IPAddr, port string) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if tc != nil {
		tc = tc.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		creds = &grpcTimedCreds{TransportCredentials: credentials.NewTLS(tc), tr: tr}
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(tr.dialer(ctx, ips, port)),
		grpc.WithNoProxy(), // out of band: never through a proxy the host may share with the platform
		grpc.WithUserAgent(userAgent),
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableRetry(), // one attempt per probe; the journey decides on retries
	}
}

// grpcHealthStatus names the answer. NotFound is how Check says the server does not know
// the service, which the health protocol calls SERVICE_UNKNOWN: an answer, not a failure
// to get one, so that grpc_status: SERVICE_UNKNOWN can be expected.
func grpcHealthStatus(resp *healthpb.HealthCheckResponse, err error) (string, error) {
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return healthpb.HealthCheckResponse_SERVICE_UNKNOWN.String(), nil
		}
		return "", err
	}
	s := resp.GetStatus()
	if _, known := healthpb.HealthCheckResponse_ServingStatus_name[int32(s)]; !known {
		return healthpb.HealthCheckResponse_UNKNOWN.String(), nil
	}
	return s.String(), nil
}

// describeGRPCError says in one line why the Check did not answer: the code, and the
// cause we saw ourselves (dial, TLS) rather than grpc's nested description of it.
func describeGRPCError(ctx context.Context, err error, tr *grpcTrace) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timeout: %s (%w)", tr.reached(), context.DeadlineExceeded)
		}
		return fmt.Errorf("cancelled: %w", ctx.Err())
	}
	st := status.Convert(err)
	if st.Code() == codes.Unavailable {
		tr.mu.Lock()
		dialErr, tlsErr := tr.dialErr, tr.tlsErr
		tr.mu.Unlock()
		switch {
		case tlsErr != nil:
			return fmt.Errorf("grpc Unavailable: TLS handshake: %w", tlsErr)
		case dialErr != nil:
			return fmt.Errorf("grpc Unavailable: %w", describeTransportError(ctx, dialErr))
		}
	}
	msg := strings.Join(strings.Fields(st.Message()), " ")
	if st.Code() == codes.Unimplemented {
		msg += " (the server has no grpc.health.v1 service)"
	}
	return fmt.Errorf("grpc %s: %s", st.Code(), msg)
}

// grpcTrace records what the connection got through. grpc-go dials and handshakes on
// its own goroutines, hence the mutex.
type grpcTrace struct {
	mu            sync.Mutex
	connect, tls  time.Duration
	usesTLS       bool      // set before dialing
	connected     bool      // TCP connect done
	ready         time.Time // connect (and TLS) done: the exchange starts
	dialErr       error
	tlsErr        error
	tlsState      *tls.ConnectionState
	handshakeDone bool
}

func (tr *grpcTrace) dialer(probeCtx context.Context, ips []net.IPAddr, port string) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, _ string) (net.Conn, error) {
		// grpc-go's connect context has its own (20 s) deadline; ours is the probe's.
		if dl, ok := probeCtx.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl)
			defer cancel()
		}
		start := time.Now()
		conn, err := dialFirst(ctx, ips, port)
		done := time.Now()
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.connect += done.Sub(start)
		if err != nil {
			tr.dialErr = err
			return nil, err
		}
		tr.connected = true
		if !tr.usesTLS {
			tr.ready = done
		}
		return conn, nil
	}
}

// dialFirst connects to the first of ips that accepts.
func dialFirst(ctx context.Context, ips []net.IPAddr, port string) (net.Conn, error) {
	d := net.Dialer{KeepAlive: -1} // keep-alive probes would start past any step's deadline
	var last error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// reached says how far the connection got, for a timeout's reason.
func (tr *grpcTrace) reached() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch {
	case !tr.connected:
		return "TCP connect did not complete before the deadline"
	case tr.usesTLS && !tr.handshakeDone:
		return "connected, but the TLS handshake did not complete before the deadline"
	default:
		return "connected, but no HTTP/2 gRPC answer before the deadline"
	}
}

// fill puts phases and TLS facts into ex.
func (tr *grpcTrace) fill(ex *Exchange, end time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ex.Phases.Connect = tr.connect
	ex.Phases.TLS = tr.tls
	if !tr.ready.IsZero() && end.After(tr.ready) {
		ex.Phases.Processing = end.Sub(tr.ready)
	}
	if tr.tlsState != nil {
		ex.Obs.TLS = tlsInfo(tr.tlsState)
		ex.Obs.Certs = tr.tlsState.PeerCertificates
		ex.Cert = earliestExpiry(tr.tlsState.PeerCertificates)
	}
}

// grpcTimedCreds times the TLS handshake and keeps its outcome for the Exchange.
type grpcTimedCreds struct {
	credentials.TransportCredentials
	tr *grpcTrace
}

func (c *grpcTimedCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	start := time.Now()
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	done := time.Now()
	c.tr.mu.Lock()
	defer c.tr.mu.Unlock()
	c.tr.tls += done.Sub(start)
	if err != nil {
		c.tr.tlsErr = err
		return conn, info, err
	}
	c.tr.handshakeDone = true
	c.tr.ready = done
	if ti, ok := info.(credentials.TLSInfo); ok {
		c.tr.tlsState = &ti.State
	}
	return conn, info, nil
}

func (c *grpcTimedCreds) Clone() credentials.TransportCredentials {
	return &grpcTimedCreds{TransportCredentials: c.TransportCredentials.Clone(), tr: c.tr}
}
