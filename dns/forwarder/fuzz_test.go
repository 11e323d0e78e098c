package forwarder

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{
		"192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:53", "[fe80::1%eth0]:53",
		"udp://192.0.2.53", "tcp://192.0.2.53", "tls://192.0.2.53#dns.example.net", "tls://[2001:db8::53]:853",
		"https://dns.example.net/dns-query#192.0.2.53", "https://192.0.2.53/dns-query", "https://192.0.2.53:8443/q?x=1",
		"HTTPS://x/#1.2.3.4", "tls://1.2.3.4#", "ftp://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUpstream(s)
		if err != nil {
			return
		}
		if err := u.validate(); err != nil {
			t.Fatalf("ParseUpstream(%q) = %+v, which does not validate: %v", s, u, err)
		}
		again, err := ParseUpstream(u.String())
		if err != nil || again != u {
			t.Fatalf("ParseUpstream(%q) = %+v; its String %q reads back as %+v, %v", s, u, u.String(), again, err)
		}
		_ = u.display()
		_ = u.dialAddr()
	})
}

// refMatch is the obvious longest-suffix match on lower-cased labels.
func refMatch(domains map[string]string, name string) string {
	labels := dns.SplitDomainName(strings.ToLower(name))
	for i := range labels {
		if sc, ok := domains[strings.Join(labels[i:], ".")+"."]; ok {
			return sc
		}
	}
	if sc, ok := domains["."]; ok {
		return sc
	}
	return DefaultScopeName
}

func FuzzMatch(f *testing.F) {
	f.Add("corp.example", "lab.corp.example", "www.lab.corp.example.")
	f.Add("", "b.c", "a.b.c")
	f.Add("CORP.example.", "x", "WWW.corp.EXAMPLE")
	f.Add("a", "b", `x\.a.`)
	f.Fuzz(func(t *testing.T, d1, d2, name string) {
		up := []Upstream{{Addr: netip.MustParseAddrPort("192.0.2.1:53")}}
		r := Rules{Scopes: []Scope{
			{Name: "one", Domains: []string{d1}, Upstreams: up},
			{Name: "two", Domains: []string{d2}, Upstreams: up},
		}}
		fw := &Forwarder{}
		rs, err := fw.compile(r)
		if err != nil {
			return
		}
		if _, ok := dns.IsDomainName(name); !ok {
			return
		}
		ref := map[string]string{}
		for _, sc := range r.Scopes {
			c, _ := canonicalDomain(sc.Domains[0])
			ref[c] = sc.Name
		}
		if got, want := rs.match(name).name, refMatch(ref, name); got != want {
			t.Fatalf("rules %q %q: match(%q) = %s, want %s", d1, d2, name, got, want)
		}
	})
}

// fakeConn answers every write with resp (its ID taken from the query),
// over UDP as one datagram and over TCP with the length prefix; then
// reads end.
type fakeConn struct {
	tcp     bool
	resp    []byte
	pending []byte
	done    bool
}

func (c *fakeConn) Write(p []byte) (int, error) {
	n := len(p)
	if c.tcp && len(p) >= 2 {
		p = p[2:] // the length prefix
	}
	r := append([]byte(nil), c.resp...)
	if len(r) >= 2 && len(p) >= 2 {
		copy(r, p[:2])
	}
	if c.tcp {
		r = append(binary.BigEndian.AppendUint16(nil, uint16(len(r))), r...)
	}
	c.pending = r
	return n, nil
}

func (c *fakeConn) Read(p []byte) (int, error) {
	if c.done || c.pending == nil {
		return 0, io.EOF
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 || !c.tcp {
		c.done = true
	}
	return n, nil
}

func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.UDPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.UDPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// fakeWriter collects what the forwarder writes to a client.
type fakeWriter struct {
	tcp    bool
	writes [][]byte
}

func (w *fakeWriter) LocalAddr() net.Addr { return &net.UDPAddr{} }
func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), b...))
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

// FuzzServe feeds a client query and an upstream's response through the
// forwarder: it must not panic, must answer exactly once with the
// client's ID, and must fit a UDP client's buffer.
func FuzzServe(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("www.corp.example.", dns.TypeA)
	qb, _ := q.Pack()
	r := new(dns.Msg)
	r.SetReply(q)
	for i := range 40 {
		r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	rb, _ := r.Pack()
	q.SetEdns0(1232, true)
	qe, _ := q.Pack()
	r.Truncated = true
	rt, _ := r.Pack()
	f.Add(qb, rb, false)
	f.Add(qe, rb, false)
	f.Add(qb, rt, true)
	f.Add(qe, rt[:40], false)
	f.Add(qb, []byte{}, false)

	fw, err := New(Options{
		Addr:            netip.MustParseAddrPort("127.0.0.1:0"),
		UpstreamTimeout: time.Second,
		QueryTimeout:    time.Second,
		Attempts:        1,
		Logger:          nil,
	})
	if err != nil {
		f.Fatal(err)
	}
	defer fw.Close()
	f.Fuzz(func(t *testing.T, query, resp []byte, tcp bool) {
		req := new(dns.Msg)
		if len(query) < headerLen || req.Unpack(query) != nil || acceptQuery(dnsHeader(query)) != dns.MsgAccept {
			return
		}
		dialer := DialFunc(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return &fakeConn{tcp: network == "tcp", resp: resp}, nil
		})
		err := fw.SetRules(Rules{Default: Scope{Dialer: dialer, Upstreams: []Upstream{
			{Protocol: UDP, Addr: netip.MustParseAddrPort("192.0.2.1:53")},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		w := &fakeWriter{tcp: tcp}
		fw.serveDNS(w, req)
		if len(w.writes) != 1 {
			t.Fatalf("%d answers, want 1", len(w.writes))
		}
		out := w.writes[0]
		if len(out) < headerLen || binary.BigEndian.Uint16(out) != req.Id {
			t.Fatalf("answer %x does not carry the client's ID %d", out, req.Id)
		}
		if size := clientSize(w, req); len(out) > size {
			t.Fatalf("answer of %d bytes for a client taking %d", len(out), size)
		}
	})
}

// dnsHeader reads the header the server's accept function sees.
func dnsHeader(b []byte) dns.Header {
	return dns.Header{
		Id:      binary.BigEndian.Uint16(b),
		Bits:    binary.BigEndian.Uint16(b[2:]),
		Qdcount: binary.BigEndian.Uint16(b[4:]),
		Ancount: binary.BigEndian.Uint16(b[6:]),
		Nscount: binary.BigEndian.Uint16(b[8:]),
		Arcount: binary.BigEndian.Uint16(b[10:]),
	}
}
