// Package network is the resilience suite's network part (issue 6, items 3 and 4):
// hostile targets next to healthy ones in one scheduler, and a flaky loopback proxy in
// front of one region of the simulated platform while the daemon runs. The tests skip
// unless PICKET_RESILIENCE=1 (`make resilience`).
//
// The helpers here are small loopback servers and a proxy, each of which ends every
// goroutine it started on Close: hostile HTTP endpoints (slow drip, endless body,
// redirect chain, huge headers), a TCP sink that accepts and never writes (a stalled TLS
// handshake or a silent banner), a UDP sink that reads DNS questions and never answers,
// and FlakyProxy, which drops or delays a seeded share of connections.
package network
