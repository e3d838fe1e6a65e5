// Package timetopage measures how fast Picket pages: the real daemon (internal/daemon.Run,
// in this process), the simulated platform (probe/probetest) and a local PagerDuty
// Events API v2 receiver (alert/notify/pdtest), all on loopback.
//
// A trial waits until everything is quiet, breaks a region (or every region) at T0,
// waits for the page the receiver accepts, heals, and waits for the resolve. The time
// to page is T(trigger accepted) − T0, the time to resolve T(resolve accepted) −
// T(heal); both are set beside the bound failure_threshold × interval + timeout +
// group_wait (Picket holds a new incident's first page for group_wait on purpose, so
// that the first page already says how wide the outage is).
//
// The soak (RunSoak) runs the daemon in a child process with ~200 targets at short
// intervals and periodic faults, and samples its goroutines and heap every 10 s.
//
// The tests are the entry points:
//
//	go test ./bench/timetopage -run TestTimeToPage -timetopage.trials=20 -timetopage.out=bench/out/timetopage.json
//	go test ./bench/timetopage -run TestSoak -soak.duration=10m -timeout 15m
//
// Report paths are taken from the module root when relative (go test runs in the
// package's directory).
package timetopage
