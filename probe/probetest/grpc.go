package probetest

import (
	"context"
	"net"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// A region's gRPC port serves the standard health service grpc.health.v1.Health in
// plaintext, the target of a grpc probe. Its answers follow the faults in force at
// the moment of each call:
//
//	service ""                         the region, as region-wide faults leave it
//	service logs, metrics, events, web that product in that region
//	any other service                  NotFound "unknown service", whatever the faults
//
// Fault to status: none, slow and stale are SERVING (slow after its delay); down
// and error are NOT_SERVING; wrong_body is UNKNOWN; hang never answers, the call
// ends on the client's deadline or on Close. As over HTTP, a non-zero Delay is
// waited before any fault but hang acts.
//
// List reports every service's status under the region-wide fault's timing (a
// hang blocks it, a delay holds it back); Watch is Unimplemented, because faults
// change without notice and a stream would have to poll for them.

// grpcHealth is one region's gRPC health server.
type grpcHealth struct {
	healthpb.UnimplementedHealthServer // Watch
	rs                                 *regionServer
	srv                                *grpc.Server
	addr                               string
}

func newGRPCHealth(rs *regionServer, ln net.Listener) *grpcHealth {
	g := &grpcHealth{rs: rs, srv: grpc.NewServer(), addr: ln.Addr().String()}
	healthpb.RegisterHealthServer(g.srv, g)
	return g
}

// serveGRPC serves g on ln until Close stops it.
func (p *Platform) serveGRPC(g *grpcHealth, ln net.Listener) {
	p.serving.Add(1)
	go func() {
		defer p.serving.Done()
		if err := g.srv.Serve(ln); err != nil { // nil after Stop
			p.logger.Error("probetest: gRPC health stopped", "region", g.rs.name, "addr", g.addr, "err", err)
		}
	}()
}

// stopGRPC stops every gRPC server built so far; Stop, not GracefulStop, so hung
// calls do not hold it up.
func (p *Platform) stopGRPC() {
	for _, rs := range p.byRegion {
		if rs.grpc != nil {
			rs.grpc.srv.Stop()
		}
	}
}

// healthProduct maps a health service name to the product whose faults it follows
// ("" for the region); ok is false for a service the region does not have.
func healthProduct(service string) (product string, ok bool) {
	if service == "" || slices.Contains(Products(), service) {
		return service, true
	}
	return "", false
}

// Check answers for one service as the current faults say.
func (g *grpcHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	product, ok := healthProduct(req.GetService())
	if !ok {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	p := g.rs.p
	if !p.enter() {
		return nil, status.Error(codes.Unavailable, "platform shutting down")
	}
	defer p.leave()
	f, _ := p.faultTable().resolve(g.rs.name, product)
	if err := g.wait(ctx, f); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: servingStatus(f.Kind)}, nil
}

// List answers for the region and every product at once, after the region-wide
// fault's hang or delay.
func (g *grpcHealth) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	p := g.rs.p
	if !p.enter() {
		return nil, status.Error(codes.Unavailable, "platform shutting down")
	}
	defer p.leave()
	faults := p.faultTable()
	regionFault, _ := faults.resolve(g.rs.name, "")
	if err := g.wait(ctx, regionFault); err != nil {
		return nil, err
	}
	out := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{}}
	for _, service := range append([]string{""}, Products()...) {
		f, _ := faults.resolve(g.rs.name, service)
		out.Statuses[service] = &healthpb.HealthCheckResponse{Status: servingStatus(f.Kind)}
	}
	return out, nil
}

// wait acts out the timing of f: forever for a hang, its delay for the others. It
// returns the status error to answer with when the call or the platform ends first.
func (g *grpcHealth) wait(ctx context.Context, f Fault) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(g.rs.p.ctx, cancel) // Close ends hung and slow calls
	defer stop()
	delay := f.Delay
	if f.Kind == FaultSlow && delay == 0 {
		delay = defaultSlowDelay
	}
	if f.Kind == FaultHang {
		<-ctx.Done()
	} else if pause(ctx, delay) {
		return nil
	}
	if g.rs.p.ctx.Err() != nil {
		return status.Error(codes.Unavailable, "platform shutting down")
	}
	return status.FromContextError(ctx.Err()).Err()
}

// servingStatus is what a health check reports under a fault of kind k, once any
// delay has passed.
func servingStatus(k FaultKind) healthpb.HealthCheckResponse_ServingStatus {
	switch k {
	case FaultDown, FaultError, FaultHang:
		return healthpb.HealthCheckResponse_NOT_SERVING
	case FaultWrongBody:
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return healthpb.HealthCheckResponse_SERVING // none, slow, stale
}
