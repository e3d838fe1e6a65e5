package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every architecture Go supports on Linux.
const clockTicks = 100

// procUsage is one reading of another process's memory and CPU.
type procUsage struct {
	RSS, HWM, Anon, File float64 // MiB
	Threads              int
	CPU                  time.Duration
}

// readProc reads /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procUsage, error) {
	st, err := readStatus(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procUsage{}, err
	}
	mib := func(name string) float64 { return float64(st[name]) / 1024 }
	u := procUsage{RSS: mib("VmRSS"), HWM: mib("VmHWM"), Anon: mib("RssAnon"), File: mib("RssFile"), Threads: int(st["Threads"])}
	u.CPU, err = procCPU(pid)
	return u, err
}

// procCPU is the user plus system time of every thread of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: the fields that follow start after
	// its closing parenthesis, with field 3 (state) first.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: want (comm), got %.40q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: want at least 15 fields, got %d", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q: want numbers", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
