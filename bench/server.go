package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// serveEnv, when set in a process's environment, makes ServeChildIfAsked run the load
// servers on the comma-separated hosts it holds instead of whatever the process would do.
const serveEnv = "PICKET_BENCH_SERVE"

// responseBody is what every target gets: a small JSON health answer.
const responseBody = `{"status":"ok","version":"1.2.3"}`

// ServeChildIfAsked turns this process into the harness's server child (or daemon
// child) when it was started as one, and exits when the parent closes its standard
// input (or signals the daemon). Call it first in
// TestMain and main of every binary that calls Run: the harness re-executes its own
// binary so that the servers' CPU and memory do not count as Picket's.
func ServeChildIfAsked() {
	if path := os.Getenv(daemonEnv); path != "" {
		if err := runDaemonChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "bench daemon child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	hosts := os.Getenv(serveEnv)
	if hosts == "" {
		return
	}
	var gaps *gapRecorder
	if ns, err := strconv.ParseInt(os.Getenv(gapsEnv), 10, 64); err == nil && ns > 0 {
		gaps = newGapRecorder(time.Duration(ns))
	}
	if err := serve(strings.Split(hosts, ","), gaps, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench server child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ServerUsage is what the server child used, reported as it exits.
type ServerUsage struct {
	CPUSeconds float64 `json:"cpu_s"`
	PeakRSSMB  float64 `json:"rss_peak_mb"`
	Requests   int64   `json:"requests"`
	// Gaps is what the servers saw of each target's schedule (only when asked).
	Gaps *GapReport `json:"gaps,omitempty"`
}

// serve listens on each host, prints "listen URL" per server and then "ready", serves
// until in reaches EOF (the parent closed it, or died), then prints "usage JSON". A line
// "ready NANOS" on in says when the prober was ready (unix nanos), for gaps.
func serve(hosts []string, gaps *gapRecorder, in io.Reader, out io.Writer) error {
	var requests atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if gaps != nil {
			gaps.arrive(r.URL.Path, time.Now())
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, responseBody)
	})
	servers := make([]*http.Server, 0, len(hosts))
	var wg sync.WaitGroup
	defer func() {
		for _, s := range servers {
			s.Close()
		}
		wg.Wait()
	}()
	for _, host := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return fmt.Errorf("listen on %s: %w", host, err)
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
		servers = append(servers, srv)
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(ln) }()
		fmt.Fprintf(out, "listen http://%s\n", ln.Addr())
	}
	fmt.Fprintln(out, "ready")
	var readyAt int64
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if ns, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
			readyAt, _ = strconv.ParseInt(ns, 10, 64)
		}
	}
	u := ServerUsage{CPUSeconds: cpuTime().Seconds(), PeakRSSMB: statusMB("VmHWM"), Requests: requests.Load()}
	if gaps != nil {
		g := gaps.report(readyAt)
		u.Gaps = &g
	}
	b, _ := json.Marshal(u)
	fmt.Fprintf(out, "usage %s\n", b)
	return nil
}

// serverChild is the parent's handle on the server process.
type serverChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the child's stdout, closed at EOF
	stderr *tailBuffer
	URLs   []string
}

// startServerChild re-executes this binary as the server child and waits until it
// listens on every host.
func startServerChild(ctx context.Context, hosts []string, env ...string) (*serverChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary to start the server child: %w", err)
	}
	c := &serverChild{cmd: exec.Command(exe), lines: make(chan string, len(hosts)+8), stderr: &tailBuffer{max: 4 << 10}}
	c.cmd.Env = append(append(os.Environ(), serveEnv+"="+strings.Join(hosts, ",")), env...)
	c.cmd.Stderr = c.stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("server child stdin: %w", err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("server child stdout: %w", err)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server child: %w", err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	if err := c.awaitReady(ctx, len(hosts)); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

func (c *serverChild) awaitReady(ctx context.Context, want int) error {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			switch {
			case !ok:
				return fmt.Errorf("server child exited before it was ready: %s", c.stderr)
			case line == "ready" && len(c.URLs) == want:
				return nil
			case line == "ready":
				return fmt.Errorf("server child ready with %d servers, want %d", len(c.URLs), want)
			case strings.HasPrefix(line, "listen "):
				c.URLs = append(c.URLs, strings.TrimPrefix(line, "listen "))
			}
		case <-timeout.C:
			return errors.New("server child not ready within 30s")
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server child: %w", ctx.Err())
		}
	}
}

// stop closes the child's stdin, reads its usage and waits for it to exit; a child that
// does not exit within 10 s is killed.
func (c *serverChild) stop() (ServerUsage, error) {
	c.stdin.Close()
	var u ServerUsage
	var uerr error = errors.New("server child said nothing of its usage")
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for done := false; !done; {
		select {
		case line, ok := <-c.lines:
			if !ok {
				done = true
				break
			}
			if js, found := strings.CutPrefix(line, "usage "); found {
				uerr = json.Unmarshal([]byte(js), &u)
			}
		case <-timeout.C:
			c.kill()
			return u, errors.New("server child did not exit within 10s of its stdin closing; killed")
		}
	}
	if err := c.cmd.Wait(); err != nil {
		return u, fmt.Errorf("server child: %w: %s", err, c.stderr)
	}
	return u, uerr
}

// kill ends the child at once and reaps it.
func (c *serverChild) kill() {
	_ = c.cmd.Process.Kill()
	for range c.lines { // drain until the reader sees EOF
	}
	_ = c.cmd.Wait()
}

// tailBuffer keeps the last max bytes written: the child's stderr, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) == 0 {
		return "(no stderr)"
	}
	return strings.TrimSpace(string(t.b))
}
