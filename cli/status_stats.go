package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/netext/netext/apitype"
)

// statsWait bounds the stats request of status, so that a busy provider
// does not hold up the status.
const statsWait = 3 * time.Second

// statusWithStats is status NAME --json: the session's status and, for a
// WireGuard session that runs, the provider's reply to "stats" as it is.
type statusWithStats struct {
	apitype.SessionStatus
	ProviderStats json.RawMessage `json:"providerStats,omitempty"`
}

// wireGuardStats is the part of the WireGuard provider's reply to the app
// message "stats" that status shows (see providers/wireguard's Stats).
type wireGuardStats struct {
	Peers []wireGuardPeer `json:"peers"`
}

type wireGuardPeer struct {
	PublicKey     string    `json:"publicKey"`
	Endpoint      string    `json:"endpoint"`
	LastHandshake time.Time `json:"lastHandshake"`
	RxBytes       uint64    `json:"rxBytes"`
	TxBytes       uint64    `json:"txBytes"`
}

// providerStats asks the provider of a running session for "stats" and
// returns the reply when it has the WireGuard provider's shape: a JSON
// object with a list of peers, each with a public key. Any other reply, an
// error (such as a caller who may only read, and so may not send
// messages) or no reply within statsWait gives nil: status then shows
// nothing more.
func (e *env) providerStats(st apitype.SessionStatus) (json.RawMessage, *wireGuardStats) {
	if st.Status != apitype.StatusConnected && st.Status != apitype.StatusReasserting {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, statsWait)
	defer cancel()
	reply, err := e.client.SendMessage(ctx, st.Name, []byte("stats"))
	if err != nil {
		return nil, nil
	}
	var shape struct {
		Peers *[]wireGuardPeer `json:"peers"`
	}
	if json.Unmarshal(reply, &shape) != nil || shape.Peers == nil {
		return nil, nil
	}
	for _, p := range *shape.Peers {
		if p.PublicKey == "" {
			return nil, nil
		}
	}
	var compact bytes.Buffer
	if json.Compact(&compact, reply) != nil {
		return nil, nil
	}
	return compact.Bytes(), &wireGuardStats{Peers: *shape.Peers}
}

// printPeers prints a table of the peers of s, if any.
func (e *env) printPeers(s *wireGuardStats) error {
	if s == nil || len(s.Peers) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout, "\npeers:")
	tw := e.table()
	fmt.Fprintln(tw, "  PUBLIC KEY\tENDPOINT\tLAST HANDSHAKE\tRECEIVED\tSENT")
	for _, p := range s.Peers {
		hs := "never"
		if !p.LastHandshake.IsZero() {
			hs = e.ago(p.LastHandshake) + " ago"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.PublicKey, orDash(p.Endpoint), hs, byteCount(p.RxBytes), byteCount(p.TxBytes))
	}
	return tw.Flush()
}

// byteCount renders n bytes in binary units: "512 B", "1.5 KiB", "3.2 GiB".
func byteCount(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
