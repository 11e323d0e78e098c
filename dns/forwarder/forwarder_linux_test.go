package forwarder

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/nettest"
)

// listenIn opens UDP and TCP sockets on addr inside ns.
func listenIn(t *testing.T, ns *nettest.NS, addr string) (net.PacketConn, net.Listener) {
	t.Helper()
	var (
		pc net.PacketConn
		ln net.Listener
	)
	err := ns.Do(func() error {
		var err error
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, ns.Name, err)
	}
	return pc, ln
}

// listenTCPIn opens a TCP listener on addr inside ns.
func listenTCPIn(t *testing.T, ns *nettest.NS, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, ns.Name, err)
	}
	return ln
}

// boundDialer dials from inside ns with the socket bound to device dev
// (SO_BINDTODEVICE), the way the daemon's tunnel and underlay dialers
// pin a path.
func boundDialer(ns *nettest.NS, dev string) Dialer {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
		})
		return errors.Join(err, serr)
	}}
	return DialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() error {
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	})
}

// lookupIn asks server from inside ns.
func lookupIn(t *testing.T, ns *nettest.NS, server netip.AddrPort, network, name string) *dns.Msg {
	t.Helper()
	var conn net.Conn
	err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout(network, server.String(), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dialing %s in %s: %v", server, ns.Name, err)
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	r, _, err := c.ExchangeWithConn(m, &dns.Conn{Conn: conn})
	if err != nil {
		t.Fatalf("looking up %s over %s: %v", name, network, err)
	}
	return r
}

// TestNamespaces runs the forwarder in the client namespace of a
// topology, with a link standing for the tunnel to the server namespace:
//
//	client 10.99.0.1 (tun0) <---------------------> (tun0) 10.99.0.2 server: tunnel DNS (53, 853, 443)
//	client (eth0) <--> internet 192.0.2.80: underlay DNS (53) <--> server
//
// and checks with the servers' own records that a tunnel domain's query
// travels the tunnel only, that other names go to the underlay server,
// and that a full tunnel sends every query through the tunnel.
func TestNamespaces(t *testing.T) {
	nettest.RequireRoot(t)
	tp := nettest.NewTopology(t)
	nettest.Veth(t, tp.Client, "tun0", tp.Server, "tun0")
	tp.Client.AddAddr(t, "tun0", "10.99.0.1/30")
	tp.Server.AddAddr(t, "tun0", "10.99.0.2/30")
	tunnelSrc := netip.MustParseAddr("10.99.0.1")

	tunnelSrv := newTestServer("tunnel", "10.99.1.1")
	pc, ln := listenIn(t, tp.Server, "10.99.0.2:53")
	tunnelSrv.start(t, pc, ln)
	cert, pool := selfSigned(t, []string{"dns.corp.example"})
	dotAddr := tunnelSrv.startTLS(t, listenTCPIn(t, tp.Server, "10.99.0.2:853"), cert)
	dohAddr := tunnelSrv.startHTTPS(t, listenTCPIn(t, tp.Server, "10.99.0.2:443"), cert)

	underSrv := newTestServer("underlay", "192.0.2.99")
	pc, ln = listenIn(t, tp.Internet, netip.AddrPortFrom(tp.PublicHost4, 53).String())
	underSrv.start(t, pc, ln)
	tp.Client.WaitPing(t, tp.PublicHost4, 10*time.Second)

	tunnelDial := boundDialer(tp.Client, "tun0")
	underDial := boundDialer(tp.Client, "eth0")
	def := Scope{
		Upstreams: []Upstream{{Protocol: UDP, Addr: netip.AddrPortFrom(tp.PublicHost4, 53)}},
		Dialer:    underDial,
	}
	tunnel := func(domains []string, ups ...Upstream) Rules {
		return Rules{
			Scopes:  []Scope{{Name: "tunnel", Domains: domains, Upstreams: ups, Dialer: tunnelDial}},
			Default: def,
		}
	}
	cleartext := Upstream{Protocol: UDP, Addr: netip.MustParseAddrPort("10.99.0.2:53")}

	fpc, fln := listenIn(t, tp.Client, "127.0.0.153:53")
	f := startForwarder(t, Options{PacketConn: fpc, Listener: fln, RootCAs: pool, Rules: tunnel([]string{"corp.example"}, cleartext)})
	fwd := netip.MustParseAddrPort("127.0.0.153:53")

	steps := []struct {
		name      string
		rules     Rules
		query     string
		network   string
		wantFrom  string // the answering server's address
		wantNet   string // transport at the tunnel server
		wantProto string // HTTP protocol at the tunnel server
	}{
		{"split: tunnel domain", tunnel([]string{"corp.example"}, cleartext), "www.corp.example", "udp", "10.99.1.1", "udp", ""},
		{"split: tunnel domain over TCP", tunnel([]string{"corp.example"}, cleartext), "db.corp.example", "tcp", "10.99.1.1", "udp", ""},
		{"split: other name", tunnel([]string{"corp.example"}, cleartext), "www.example.org", "udp", "192.0.2.99", "", ""},
		{"DNS over TLS", tunnel([]string{"corp.example"}, Upstream{Protocol: TLS, Addr: dotAddr, ServerName: "dns.corp.example"}),
			"dot.corp.example", "udp", "10.99.1.1", "tls", ""},
		{"DNS over HTTPS", tunnel([]string{"corp.example"}, Upstream{Protocol: HTTPS, URL: "https://dns.corp.example/dns-query", Addr: dohAddr}),
			"doh.corp.example", "tcp", "10.99.1.1", "https", "HTTP/2.0"},
		{"full tunnel: other name", tunnel([]string{""}, cleartext), "www.example.net", "udp", "10.99.1.1", "udp", ""},
		{"full tunnel: tunnel domain", tunnel([]string{""}, cleartext), "mail.corp.example", "udp", "10.99.1.1", "udp", ""},
		{"full tunnel over DoH", tunnel([]string{""}, Upstream{Protocol: HTTPS, URL: "https://dns.corp.example/dns-query", Addr: dohAddr}),
			"www.example.com", "udp", "10.99.1.1", "https", "HTTP/2.0"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := f.SetRules(st.rules); err != nil {
				t.Fatal(err)
			}
			before := len(tunnelSrv.queries())
			r := lookupIn(t, tp.Client, fwd, st.network, st.query)
			if got := answerA(r); got != st.wantFrom {
				t.Fatalf("%s answered by %s, want %s", st.query, got, st.wantFrom)
			}
			seen := tunnelSrv.queries()[before:]
			if st.wantNet == "" {
				if len(seen) != 0 {
					t.Errorf("tunnel server saw %d queries for a name outside the tunnel", len(seen))
				}
				return
			}
			if len(seen) != 1 {
				t.Fatalf("tunnel server saw %d queries, want 1", len(seen))
			}
			q := seen[0]
			if q.Net != st.wantNet || q.Proto != st.wantProto || q.Src != tunnelSrc {
				t.Errorf("tunnel server saw the query over %s %q from %v, want %s %q from %v", q.Net, q.Proto, q.Src, st.wantNet, st.wantProto, tunnelSrc)
			}
		})
	}

	// The underlay server saw exactly the one name outside the tunnel, from
	// the client's underlay address, and nothing of the tunnel's.
	var under []string
	for _, q := range underSrv.queries() {
		under = append(under, q.Name)
		if q.Src != tp.ClientAddr4.Addr() {
			t.Errorf("underlay server saw %s from %v, want %v", q.Name, q.Src, tp.ClientAddr4.Addr())
		}
		if strings.HasSuffix("."+strings.ToLower(q.Name), ".corp.example.") {
			t.Errorf("a tunnel domain's query reached the underlay server: %s", q.Name)
		}
	}
	if len(under) != 1 || under[0] != "www.example.org." {
		t.Errorf("underlay server saw %q, want only www.example.org.", under)
	}
	st, _ := f.Stats().Scope(DefaultScopeName)
	if len(st.Upstreams) != 1 || st.Upstreams[0].Queries != 1 {
		t.Errorf("default scope counters %+v, want one upstream query", st)
	}
}
