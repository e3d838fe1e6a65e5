package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/picket-dev/picket/internal/daemon"
)

// daemonEnv, when set, makes ServeChildIfAsked run the daemon (what `picket run -c`
// runs) on the config file it names, so the daemon's memory and CPU are measured as a
// process of their own. heapEnv names the file a SIGUSR1 writes a heap profile to.
const (
	daemonEnv = "PICKET_BENCH_DAEMON"
	heapEnv   = "PICKET_BENCH_HEAPPROFILE"
	cpuEnv    = "PICKET_BENCH_CPUPROFILE"
)

// runDaemonChild runs the daemon until SIGTERM or SIGINT. On SIGUSR1 it writes a heap
// profile (after a GC, so it shows what is live) and prints "heap written"; SIGUSR2
// starts a CPU profile, and the next SIGUSR2 (or the end) stops it.
func runDaemonChild(configPath string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	var cpu cpuProfile
	defer cpu.stop()
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				profileOnSignal(sig, &cpu)
			}
		}
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return daemon.Run(ctx, daemon.Options{ConfigPath: configPath, Logger: log, Version: "bench"})
}

func profileOnSignal(sig os.Signal, cpu *cpuProfile) {
	if sig == syscall.SIGUSR2 {
		if err := cpu.toggle(os.Getenv(cpuEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
		}
		return
	}
	if err := writeHeap(os.Getenv(heapEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
	}
	fmt.Println("heap written")
}

// cpuProfile is a CPU profile being written, or none.
type cpuProfile struct{ f *os.File }

func (c *cpuProfile) toggle(path string) error {
	if c.f != nil {
		c.stop()
		return nil
	}
	if path == "" {
		return fmt.Errorf("no file named in %s", cpuEnv)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	c.f = f
	return nil
}

func (c *cpuProfile) stop() {
	if c.f != nil {
		pprof.StopCPUProfile()
		c.f.Close()
		c.f = nil
	}
}

func writeHeap(path string) error {
	if path == "" {
		return fmt.Errorf("no file named in %s", heapEnv)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
