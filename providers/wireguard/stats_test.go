package wireguard

import (
	"os"
	"testing"
)

func TestStatusKiB(t *testing.T) {
	const status = "Name:\tnetext-provider\nVmPeak:\t  812345 kB\nVmHWM:\t   34560 kB\nVmRSS:\t   30012 kB\nBad:\tx kB\n"
	for _, tt := range []struct {
		key  string
		want uint64
	}{
		{"VmHWM:", 34560},
		{"VmRSS:", 30012},
		{"VmPeak:", 812345},
		{"VmSwap:", 0}, // missing
		{"Bad:", 0},    // not a number
		{"Name:", 0},   // not a size
	} {
		if got := statusKiB([]byte(status), tt.key); got != tt.want {
			t.Errorf("statusKiB(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestReadMemoryStats(t *testing.T) {
	m := readMemoryStats()
	if m.Mapped == 0 || m.HeapGoal == 0 {
		t.Errorf("runtime metrics missing: %+v", m)
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		return // no /proc: the sizes stay zero
	}
	if m.RSS == 0 || m.PeakRSS < m.RSS {
		t.Errorf("RSS %d, peak %d: want a peak at least the current RSS, both non-zero on Linux", m.RSS, m.PeakRSS)
	}
}
