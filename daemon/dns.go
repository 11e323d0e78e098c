package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/netext/netext/dns"
	"github.com/netext/netext/session"
)

// forwarderBase is the address of slot 0's DNS forwarder; slot i listens
// on the i-th address after it, port 53 (at most 100 slots: up to
// 127.0.0.252).
var forwarderBase = netip.AddrFrom4([4]byte{127, 0, 0, 153})

// dnsDir is the DNS backend's state directory: its journal and the backup
// of resolv.conf.
func (c *Config) dnsDir() string { return filepath.Join(c.StateDir, "dns") }

// dnsOptions returns the options of the host's DNS backend.
func (c *Config) dnsOptions() dns.Options {
	return dns.Options{Mode: c.DNSMode, StateDir: c.dnsDir(), Logger: c.Logger}
}

// forwarderAddr returns where the DNS forwarder of slot i listens.
func forwarderAddr(i int) netip.AddrPort {
	a := forwarderBase.As4()
	a[3] += byte(i)
	return netip.AddrPortFrom(netip.AddrFrom4(a), 53)
}

// cleanUpDNS puts back the DNS configuration a run that did not stop
// cleanly left: resolv.conf, resolved's links, resolvconf's records.
func cleanUpDNS(cfg Config) error {
	if err := os.MkdirAll(cfg.dnsDir(), 0o700); err != nil {
		return fmt.Errorf("creating the DNS state directory: %w", err)
	}
	if err := dns.CleanUp(cfg.dnsOptions()); err != nil {
		return fmt.Errorf("DNS: %w", err)
	}
	return nil
}

// hostDNS is the host's DNS backend, shared by every session.
type hostDNS struct {
	backend dns.Backend // nil when err is set
	err     error       // why there is no backend
	cfg     *Config
}

// openDNS opens the host's DNS backend. Without one, netextd still runs:
// the settings of sessions that carry DNS then fail with the reason.
func openDNS(cfg *Config) *hostDNS {
	h := &hostDNS{cfg: cfg}
	if err := os.MkdirAll(cfg.dnsDir(), 0o700); err != nil {
		h.err = fmt.Errorf("creating the DNS state directory: %w", err)
	} else {
		h.backend, h.err = dns.New(cfg.dnsOptions())
	}
	if h.err != nil {
		cfg.Logger.Error("no DNS backend: sessions whose settings carry DNS will fail", "err", h.err)
		return h
	}
	cfg.Logger.Info("DNS backend", "mode", h.backend.Mode().String())
	return h
}

// session returns the DNS of the session in slot i.
func (h *hostDNS) session(i int) session.DNS {
	if h == nil {
		return session.DNS{}
	}
	return session.DNS{Backend: h.backend, Err: h.err, ForwarderAddr: forwarderAddr(i), RootCAs: h.cfg.DNSRootCAs}
}

// close reverts every link's DNS, once the sessions have stopped.
func (h *hostDNS) close() {
	if h == nil || h.backend == nil {
		return
	}
	if err := h.backend.Close(); err != nil {
		h.cfg.Logger.Error("restoring DNS", "err", err)
	}
}
