package wireguard

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Stats is the provider's answer to the app message "stats".
type Stats struct {
	ListenPort int            `json:"listenPort"` // the local UDP port
	Peers      []PeerStats    `json:"peers"`      // in configuration order
	Transport  TransportStats `json:"transport"`
	Memory     MemoryStats    `json:"memory"`
}

// MemoryStats is the provider process's memory, to check its bounds
// (see Memory in the package documentation). Values the system does not
// report are zero.
type MemoryStats struct {
	RSS      uint64 `json:"rss"`      // resident now, bytes (VmRSS)
	PeakRSS  uint64 `json:"peakRSS"`  // the most resident so far, bytes (VmHWM)
	HeapLive uint64 `json:"heapLive"` // Go heap marked live by the last collection, bytes
	HeapGoal uint64 `json:"heapGoal"` // the heap size at which the next collection starts, bytes
	Mapped   uint64 `json:"mapped"`   // all memory the Go runtime has mapped, bytes
	GCCycles uint64 `json:"gcCycles"` // garbage collections so far
}

// readMemoryStats reads the runtime's metrics and /proc/self/status.
func readMemoryStats() MemoryStats {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	m := MemoryStats{HeapLive: v(0), HeapGoal: v(1), Mapped: v(2), GCCycles: v(3)}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		m.RSS, m.PeakRSS = statusKiB(status, "VmRSS:")*1024, statusKiB(status, "VmHWM:")*1024
	}
	return m
}

// statusKiB returns the value of a "Key:   123 kB" line of
// /proc/self/status, or zero.
func statusKiB(status []byte, key string) uint64 {
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// PeerStats is the state of one peer, from wireguard-go's device.
type PeerStats struct {
	PublicKey           string    `json:"publicKey"`                     // base64
	Endpoint            string    `json:"endpoint,omitempty"`            // "IP:port" in use, "" for none yet
	LastHandshake       time.Time `json:"lastHandshake,omitzero"`        // zero: none yet
	RxBytes             uint64    `json:"rxBytes"`                       // received from the peer, WireGuard headers included
	TxBytes             uint64    `json:"txBytes"`                       // sent to the peer, WireGuard headers included
	PersistentKeepalive int       `json:"persistentKeepalive,omitempty"` // seconds, 0 for off
	AllowedIPs          []string  `json:"allowedIPs,omitempty"`
}

// parseIpcGet reads the peers from the output of wireguard-go's IpcGet
// (the UAPI "get" format, https://www.wireguard.com/xplatform/). It skips
// the private and preshared keys: they are never copied out of the text.
func parseIpcGet(text string) (port int, peers []PeerStats, err error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	var cur *PeerStats
	var sec, nsec int64
	flush := func() {
		if cur == nil {
			return
		}
		if sec != 0 || nsec != 0 {
			cur.LastHandshake = time.Unix(sec, nsec)
		}
		peers = append(peers, *cur)
		cur, sec, nsec = nil, 0, 0
	}
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		var perr error
		switch key {
		case "listen_port":
			port, perr = strconv.Atoi(value)
		case "public_key":
			flush()
			var k []byte
			if k, perr = hex.DecodeString(value); perr == nil && len(k) == wgtypes.KeyLen {
				cur = &PeerStats{PublicKey: wgtypes.Key(k).String()}
			}
		case "endpoint":
			if cur != nil {
				cur.Endpoint = value
			}
		case "last_handshake_time_sec":
			sec, perr = strconv.ParseInt(value, 10, 64)
		case "last_handshake_time_nsec":
			nsec, perr = strconv.ParseInt(value, 10, 64)
		case "rx_bytes":
			if cur != nil {
				cur.RxBytes, perr = strconv.ParseUint(value, 10, 64)
			}
		case "tx_bytes":
			if cur != nil {
				cur.TxBytes, perr = strconv.ParseUint(value, 10, 64)
			}
		case "persistent_keepalive_interval":
			if cur != nil {
				cur.PersistentKeepalive, perr = strconv.Atoi(value)
			}
		case "allowed_ip":
			if cur != nil {
				cur.AllowedIPs = append(cur.AllowedIPs, value)
			}
		}
		if perr != nil {
			// Values are never secret here: private_key and preshared_key
			// are not parsed.
			return 0, nil, fmt.Errorf("wireguard: reading the device's state: %s=%s: %w", key, value, perr)
		}
	}
	flush()
	return port, peers, sc.Err()
}
