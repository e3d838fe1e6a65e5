package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTime is the user plus system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// StatusKiB reads one "Name:   1234 kB" line of /proc/self/status (VmRSS, VmHWM).
func StatusKiB(field string) (int64, error) {
	fields, err := readStatus("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", field, err)
	}
	kb, ok := fields[field]
	if !ok {
		return 0, fmt.Errorf("%s: not in /proc/self/status as a number of kB", field)
	}
	return kb, nil
}

// readStatus reads the numbers of a /proc/PID/status file by name: the "1234 kB" of
// VmRSS and the like, and plain counts (Threads); lines of other values are left out.
func readStatus(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fields := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64); err == nil {
			fields[name] = n
		}
	}
	return fields, sc.Err()
}

// statusMB is StatusKiB in MiB, 0 where /proc is unreadable (the figure is then missing,
// not the run).
func statusMB(field string) float64 {
	kb, err := StatusKiB(field)
	if err != nil {
		return 0
	}
	return float64(kb) / 1024
}

// LoadAvg is the 1, 5 and 15 minute load averages: the machine is shared, and a figure
// taken while others were busy says so.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// timeWait is how many TCP sockets of this network namespace sit in TIME_WAIT.
func timeWait() int {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == "tw" {
				n, err := strconv.Atoi(f[i+1])
				if err != nil {
					return -1
				}
				return n
			}
		}
	}
	return -1
}

// tcpCounters reads the kernel's TCP counters (/proc/net/snmp and /proc/net/netstat),
// named like nstat does: TcpExt.ListenOverflows, Tcp.RetransSegs. They say why
// connections failed or were slow (dropped SYNs, overflowing queues, TIME_WAIT clashes).
func tcpCounters() map[string]int64 {
	out := map[string]int64{}
	for _, file := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) == 0 || len(names) != len(values) || (names[0] != "Tcp:" && names[0] != "TcpExt:") {
				continue
			}
			prefix := strings.TrimSuffix(names[0], ":") + "."
			for k := 1; k < len(names); k++ {
				if v, err := strconv.ParseInt(values[k], 10, 64); err == nil {
					out[prefix+names[k]] = v
				}
			}
		}
	}
	return out
}

// counterDeltas is after minus before for the counters that moved; gauges such as
// Tcp.CurrEstab are left out.
func counterDeltas(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for name, v := range after {
		if name == "Tcp.CurrEstab" || name == "Tcp.MaxConn" || strings.HasPrefix(name, "Tcp.Rto") {
			continue
		}
		if d := v - before[name]; d != 0 {
			out[name] = d
		}
	}
	return out
}
