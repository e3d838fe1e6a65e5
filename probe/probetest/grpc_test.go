package probetest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
	unknown    = healthpb.HealthCheckResponse_UNKNOWN
	// grpcCallTimeout bounds every call expected to answer.
	grpcCallTimeout = 2 * time.Second
)

// healthServices is every service a region's health server knows: the region and its products.
func healthServices() []string { return append([]string{""}, Products()...) }

// dialHealth is a real gRPC client of region's health server, closed with the test.
func dialHealth(t *testing.T, p *Platform, region string) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(p.GRPCAddr(region), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("gRPC client of %s: %v", region, err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// checkWithin calls Check for service with a deadline of within.
func checkWithin(c healthpb.HealthClient, service string, within time.Duration) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return resp.GetStatus(), err
}

// expectStatus checks service answers want in time.
func expectStatus(t *testing.T, c healthpb.HealthClient, where, service string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	got, err := checkWithin(c, service, grpcCallTimeout)
	if err != nil || got != want {
		t.Errorf("%s service %q: expected %s, got %s and %v", where, service, want, got, err)
	}
}

// expectCode checks err is a gRPC status error with code want.
func expectCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: expected code %s, got %v", what, want, err)
	}
}

func TestGRPCHealthServesByDefault(t *testing.T) {
	p := startPlatform(t, Options{Regions: []string{"eu1", "us1", "ap1"}, GRPCAddrs: map[string]string{"eu1": "", "us1": ""}})
	if a := p.GRPCAddr("eu1"); !strings.HasPrefix(a, "127.0.0.1:") || a == p.GRPCAddr("us1") {
		t.Errorf("GRPCAddr(eu1): expected its own 127.0.0.1:PORT, got %s and us1 %s", a, p.GRPCAddr("us1"))
	}
	for _, region := range []string{"ap1", "nope"} {
		if a := p.GRPCAddr(region); a != "" {
			t.Errorf("GRPCAddr(%s): expected \"\" without a gRPC server, got %s", region, a)
		}
	}
	for _, region := range []string{"eu1", "us1"} {
		c := dialHealth(t, p, region)
		for _, service := range healthServices() {
			expectStatus(t, c, region, service, serving)
		}
	}
	c := dialHealth(t, p, "eu1")

	t.Run("an unknown service is NotFound", func(t *testing.T) {
		for _, service := range []string{"nope", "Logs", "healthz", "grpc.health.v1.Health"} {
			_, err := checkWithin(c, service, grpcCallTimeout)
			expectCode(t, "Check "+service, err, codes.NotFound)
			if err != nil && !strings.Contains(err.Error(), "unknown service") {
				t.Errorf("Check %s: expected \"unknown service\", got %v", service, err)
			}
		}
		p.SetFault("eu1", "", Fault{Kind: FaultHang})
		defer p.ClearFaults()
		_, err := checkWithin(c, "nope", grpcCallTimeout)
		expectCode(t, "Check nope under a region-wide hang", err, codes.NotFound)
	})
	t.Run("List reports every service", func(t *testing.T) {
		p.SetFault("eu1", "metrics", Fault{Kind: FaultError})
		defer p.ClearFaults()
		ctx, cancel := context.WithTimeout(context.Background(), grpcCallTimeout)
		defer cancel()
		resp, err := c.List(ctx, &healthpb.HealthListRequest{})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := resp.GetStatuses()
		for _, service := range healthServices() {
			want := serving
			if service == "metrics" {
				want = notServing
			}
			if got[service].GetStatus() != want {
				t.Errorf("List: expected %q %s, got %v", service, want, got[service])
			}
		}
		if len(got) != len(healthServices()) {
			t.Errorf("List: expected %d services, got %v", len(healthServices()), got)
		}
	})
	t.Run("Watch is Unimplemented", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), grpcCallTimeout)
		defer cancel()
		stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		expectCode(t, "Watch", err, codes.Unimplemented)
	})
	t.Run("answers follow the faults in force now", func(t *testing.T) {
		defer p.ClearFaults()
		p.SetFault("eu1", "", Fault{Kind: FaultDown})
		expectStatus(t, c, "eu1 down", "", notServing)
		p.SetFault("eu1", "", Fault{Kind: FaultWrongBody})
		expectStatus(t, c, "eu1 wrong_body", "", unknown)
		p.ClearFaults()
		expectStatus(t, c, "eu1 cleared", "", serving)
	})
}

// TestGRPCHealthFaults: each fault, set on eu1 (region-wide or on logs) or on
// every region, gives each service its status; regions the rule does not name
// keep serving.
func TestGRPCHealthFaults(t *testing.T) {
	cases := []struct {
		name            string
		region, product string
		fault           Fault
		want            healthpb.HealthCheckResponse_ServingStatus
		minTook         time.Duration // no answer sooner
	}{
		{"region down", "eu1", "", Fault{Kind: FaultDown}, notServing, 0},
		{"region error", "eu1", "", Fault{Kind: FaultError}, notServing, 0},
		{"region wrong body", "eu1", "", Fault{Kind: FaultWrongBody}, unknown, 0},
		{"region stale", "eu1", "", Fault{Kind: FaultStale}, serving, 0},
		{"region slow", "eu1", "", Fault{Kind: FaultSlow, Delay: matrixSlowDelay}, serving, matrixSlowDelay},
		{"region error after a delay", "eu1", "", Fault{Kind: FaultError, Delay: matrixSlowDelay}, notServing, matrixSlowDelay},
		{"logs down", "eu1", "logs", Fault{Kind: FaultDown}, notServing, 0},
		{"logs error", "eu1", "logs", Fault{Kind: FaultError}, notServing, 0},
		{"logs wrong body", "eu1", "logs", Fault{Kind: FaultWrongBody}, unknown, 0},
		{"logs slow", "eu1", "logs", Fault{Kind: FaultSlow, Delay: matrixSlowDelay}, serving, matrixSlowDelay},
		{"logs error in every region", "", "logs", Fault{Kind: FaultError}, notServing, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startPlatform(t, Options{GRPCAddrs: map[string]string{"eu1": "", "us1": ""}})
			p.SetFault(tc.region, tc.product, tc.fault)
			for _, region := range []string{"eu1", "us1"} {
				c := dialHealth(t, p, region)
				for _, service := range healthServices() {
					hit := (tc.region == "" || tc.region == region) && (tc.product == "" || tc.product == service)
					want, minTook := serving, time.Duration(0)
					if hit {
						want, minTook = tc.want, tc.minTook
					}
					start := time.Now()
					expectStatus(t, c, region, service, want)
					if took := time.Since(start); took < minTook {
						t.Errorf("%s service %q: expected no answer sooner than %s, got one after %s", region, service, minTook, took)
					}
				}
			}
		})
	}
}

// TestGRPCHealthHang: a hung check ends on the client's deadline, and its handler
// with it; the region's other services and other regions keep answering.
func TestGRPCHealthHang(t *testing.T) {
	p := startPlatform(t, Options{GRPCAddrs: map[string]string{"eu1": "", "us1": ""}})
	eu1, us1 := dialHealth(t, p, "eu1"), dialHealth(t, p, "us1")
	expectHangs := func(t *testing.T, service string) {
		t.Helper()
		start := time.Now()
		_, err := checkWithin(eu1, service, hangClientTimeout)
		expectCode(t, "Check "+service, err, codes.DeadlineExceeded)
		if took := time.Since(start); took < hangClientTimeout {
			t.Errorf("Check %s: expected to wait out the %s deadline, ended after %s", service, hangClientTimeout, took)
		}
		testkit.WaitFor(t, time.Second, "the hung handler to end", func() bool { return p.active.Load() == 0 })
	}
	t.Run("region-wide", func(t *testing.T) {
		p.SetFault("eu1", "", Fault{Kind: FaultHang})
		defer p.ClearFaults()
		for _, service := range []string{"", "web"} {
			expectHangs(t, service)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hangClientTimeout)
		defer cancel()
		_, err := eu1.List(ctx, &healthpb.HealthListRequest{})
		expectCode(t, "List", err, codes.DeadlineExceeded)
		for _, service := range healthServices() {
			expectStatus(t, us1, "us1", service, serving)
		}
	})
	t.Run("one product", func(t *testing.T) {
		p.SetFault("eu1", "events", Fault{Kind: FaultHang})
		defer p.ClearFaults()
		expectHangs(t, "events")
		for _, service := range []string{"", "logs", "metrics", "web"} {
			expectStatus(t, eu1, "eu1", service, serving)
		}
		expectStatus(t, us1, "us1", "events", serving)
	})
}

// TestGRPCHangEndsOnClose: Close ends a hung check at once, and nothing listens
// on the gRPC port afterwards.
func TestGRPCHangEndsOnClose(t *testing.T) {
	p := startPlatform(t, Options{GRPCAddrs: map[string]string{"eu1": ""}})
	c := dialHealth(t, p, "eu1")
	expectStatus(t, c, "eu1", "", serving) // the connection is up before the hang
	p.SetFault("eu1", "", Fault{Kind: FaultHang})
	done := make(chan error, 1)
	go func() {
		_, err := checkWithin(c, "logs", time.Minute)
		done <- err
	}()
	testkit.WaitFor(t, 2*time.Second, "the check to reach its handler", func() bool { return p.active.Load() >= 1 })

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close: still waiting for the hung check after 5s")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("expected Close to end the hung check at once, took %s", took)
	}
	select {
	case err := <-done:
		expectCode(t, "the hung check", err, codes.Unavailable)
	case <-time.After(2 * time.Second):
		t.Fatal("the hung check: still waiting 2s after Close")
	}
	conn, err := net.DialTimeout("tcp", p.GRPCAddr("eu1"), time.Second)
	if err == nil {
		conn.Close()
		t.Errorf("expected nothing listening on %s after Close", p.GRPCAddr("eu1"))
	}
}
