package forwarder

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkForward measures queries through the forwarder, from clients
// on loopback UDP, to an upstream over each protocol, against asking the
// upstream directly.
func BenchmarkForward(b *testing.B) {
	s := newTestServer("up", "10.0.0.1")
	pc, ln := listenLoopback(b)
	s.start(b, pc, ln)
	cert, pool := selfSigned(b, []string{"up.test"})
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	dot := s.startTLS(b, tln, cert)
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	doh := s.startHTTPS(b, hln, cert)

	run := func(b *testing.B, server netip.AddrPort) {
		b.RunParallel(func(pb *testing.PB) {
			c := &dns.Client{Net: "udp"}
			conn, err := c.Dial(server.String())
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			m := new(dns.Msg)
			m.SetQuestion("www.corp.example.", dns.TypeA)
			for pb.Next() {
				m.Id = dns.Id()
				r, _, err := c.ExchangeWithConn(m, conn)
				if err != nil || len(r.Answer) != 1 {
					b.Errorf("answer %v, %v", r, err)
					return
				}
			}
		})
	}
	b.Run("direct UDP", func(b *testing.B) { run(b, s.addr) })
	for _, u := range []Upstream{
		{Protocol: UDP, Addr: s.addr},
		{Protocol: TCP, Addr: s.addr},
		{Protocol: TLS, Addr: dot, ServerName: "up.test"},
		{Protocol: HTTPS, Addr: doh, URL: "https://up.test/dns-query"},
	} {
		b.Run(fmt.Sprint("via forwarder ", u.Protocol), func(b *testing.B) {
			f := startForwarder(b, Options{RootCAs: pool, Rules: Rules{Default: Scope{Upstreams: []Upstream{u}}}})
			run(b, f.Addr())
		})
	}
}
