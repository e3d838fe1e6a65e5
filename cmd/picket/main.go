// Command picket is an out-of-band synthetic prober that pages through PagerDuty.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes are a contract (DESIGN.md).
const (
	exitOK    = 0
	exitDown  = 1
	exitUsage = 2
)

// exitError carries an exit code out of a command; its message may be empty when the
// command has already printed what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "picket:", ee.err)
		}
		return ee.code
	}
	// Anything cobra itself rejects (unknown flag, bad args) is a usage error.
	fmt.Fprintln(stderr, "picket:", err)
	fmt.Fprintln(stderr, "Run 'picket --help' for usage.")
	return exitUsage
}
