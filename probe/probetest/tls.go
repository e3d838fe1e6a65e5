package probetest

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// tlsFrontDoor serves a region's handler over TLS, so journeys can run over HTTPS
// and TLS probes have a real certificate to check. It shares the region's
// handler, data, counters and faults; only the transport differs.
type tlsFrontDoor struct {
	srv *http.Server
	url string
}

// newTLSFrontDoor wraps ln (already open) with a certificate for the region. A
// region-wide "down" drops connections before the handshake, as a dead load
// balancer would.
func newTLSFrontDoor(rs *regionServer, ln net.Listener, ca *authority, now time.Time) (*tlsFrontDoor, net.Listener, error) {
	cert, err := ca.issueLeaf(rs.name, now)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// HTTP/1.1 only: a dropped connection is a hijack, which HTTP/2 has not.
		NextProtos: []string{"http/1.1"},
	}
	door := &tlsFrontDoor{srv: rs.p.newServer(rs), url: "https://" + ln.Addr().String()}
	return door, tls.NewListener(dropListener{Listener: ln, drop: rs.dropsAtAccept}, cfg), nil
}
