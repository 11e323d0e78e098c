package wireguard

import (
	"bufio"
	"encoding/hex"
	"fmt"
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
