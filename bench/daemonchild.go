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

	"github.com/picket-dev/picket/alert/daemon"
)

// daemonEnv, when set, makes ServeChildIfAsked run the daemon (what `picket run -c`
// runs) on the config file it names, so the daemon's memory and CPU are measured as a
// process of their own. heapEnv names the file a SIGUSR1 writes a heap profile to.
const (
	daemonEnv = "PICKET_BENCH_DAEMON"
	heapEnv   = "PICKET_BENCH_HEAPPROFILE"
)

// runDaemonChild runs the daemon until SIGTERM or SIGINT. On SIGUSR1 it writes a heap
// profile (after a GC, so it shows what is live) and prints "heap written".
func runDaemonChild(configPath string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				if err := writeHeap(os.Getenv(heapEnv)); err != nil {
					fmt.Fprintln(os.Stderr, "heap profile:", err)
				}
				fmt.Println("heap written")
			}
		}
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return daemon.Run(ctx, daemon.Options{ConfigPath: configPath, Logger: log, Version: "bench"})
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
