package forwarder

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/netext/netext/internal/dnstesting"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seenQuery is one query a test server received.
type seenQuery struct {
	Name  string
	Type  uint16
	ID    uint16
	Net   string // "udp", "tcp", "tls" or "https"
	Src   netip.Addr
	Proto string // HTTP protocol, for "https"
	Msg   *dns.Msg
}

// testServer is an upstream DNS server for tests. By default it answers A
// queries with its IPv4 address, AAAA with its IPv6 address and TXT with
// its name and the query name; handle, when set, answers instead.
type testServer struct {
	name   string
	ip4    netip.Addr
	ip6    netip.Addr
	handle func(s *testServer, w dns.ResponseWriter, r *dns.Msg) // nil: the default answer

	addr netip.AddrPort // UDP and TCP (and TLS when started so)

	mu   sync.Mutex // guards seen
	seen []seenQuery
}

func newTestServer(name string, ip4 string) *testServer {
	return &testServer{
		name: name,
		ip4:  netip.MustParseAddr(ip4),
		ip6:  netip.MustParseAddr("2001:db8:ffff::" + strings.TrimPrefix(ip4[strings.LastIndex(ip4, "."):], ".")),
	}
}

// record notes a query.
func (s *testServer) record(netw string, src net.Addr, proto string, r *dns.Msg) {
	q := seenQuery{ID: r.Id, Net: netw, Proto: proto, Msg: r.Copy()}
	if len(r.Question) > 0 {
		q.Name, q.Type = r.Question[0].Name, r.Question[0].Qtype
	}
	if ap, err := netip.ParseAddrPort(src.String()); err == nil {
		q.Src = ap.Addr().Unmap()
	}
	s.mu.Lock()
	s.seen = append(s.seen, q)
	s.mu.Unlock()
}

// queries returns what the server saw.
func (s *testServer) queries() []seenQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenQuery(nil), s.seen...)
}

// names returns the query names the server saw, in order.
func (s *testServer) names() []string {
	var n []string
	for _, q := range s.queries() {
		n = append(n, q.Name)
	}
	return n
}

// answer is the default answer to r.
func (s *testServer) answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: s.ip4.AsSlice()})
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: s.ip6.AsSlice()})
	case dns.TypeTXT:
		hdr.Rrtype = dns.TypeTXT
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{s.name, q.Name}})
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	return m
}

// ServeDNS answers over UDP, TCP and TLS.
func (s *testServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	netw := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		netw = "tcp"
		if _, ok := w.(dns.ConnectionStater); ok {
			if cs := w.(dns.ConnectionStater).ConnectionState(); cs != nil {
				netw = "tls"
			}
		}
	}
	s.record(netw, w.RemoteAddr(), "", r)
	if s.handle != nil {
		s.handle(s, w, r)
		return
	}
	w.WriteMsg(s.answer(r))
}

// serveHTTP answers DoH POSTs at /dns-query.
func (s *testServer) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/dns-query" || req.Method != http.MethodPost || req.Header.Get("Content-Type") != dnsMessageType {
		http.Error(w, "not a DoH POST", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 65536))
	r := new(dns.Msg)
	if err != nil || r.Unpack(body) != nil {
		http.Error(w, "bad message", http.StatusBadRequest)
		return
	}
	src, _ := net.ResolveTCPAddr("tcp", req.RemoteAddr)
	s.record("https", src, req.Proto, r)
	out, _ := s.answer(r).Pack()
	w.Header().Set("Content-Type", dnsMessageType)
	w.Write(out)
}

// start serves UDP on pc and TCP on ln until the test ends.
func (s *testServer) start(t testing.TB, pc net.PacketConn, ln net.Listener) {
	t.Helper()
	s.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	dnstesting.Serve(t, &dns.Server{PacketConn: pc, Handler: s})
	dnstesting.Serve(t, &dns.Server{Listener: ln, Handler: s})
}

// startTLS serves DNS over TLS on ln until the test ends.
func (s *testServer) startTLS(t testing.TB, ln net.Listener, cert tls.Certificate) netip.AddrPort {
	t.Helper()
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	dnstesting.Serve(t, &dns.Server{Listener: tl, Handler: s})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// startHTTPS serves DNS over HTTPS (HTTP/2 offered) on ln until the test
// ends.
func (s *testServer) startHTTPS(t testing.TB, ln net.Listener, cert tls.Certificate) netip.AddrPort {
	t.Helper()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	hs.Listener.Close()
	hs.Listener = ln
	hs.EnableHTTP2 = true
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return netip.MustParseAddrPort(ln.Addr().String())
}

// listenLoopback opens UDP and TCP sockets on the same free port of
// 127.0.0.1.
func listenLoopback(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue // the port is taken for TCP; try another
		}
		return pc, ln
	}
	t.Fatal("no free port for UDP and TCP on 127.0.0.1")
	return nil, nil
}

// loopbackServer starts a test server on 127.0.0.1.
func loopbackServer(t testing.TB, name, ip4 string) *testServer {
	t.Helper()
	s := newTestServer(name, ip4)
	pc, ln := listenLoopback(t)
	s.start(t, pc, ln)
	return s
}

// upstreamOf returns the upstream for s over protocol p.
func (s *testServer) upstream(p Protocol) Upstream {
	return Upstream{Protocol: p, Addr: s.addr}
}

// countingDialer is a Dialer that counts its dials and notes where they
// went, standing for a path (tunnel or underlay).
type countingDialer struct {
	d     net.Dialer
	dials atomic.Int64

	mu    sync.Mutex // guards addrs
	addrs map[string]bool
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.dials.Add(1)
	c.mu.Lock()
	if c.addrs == nil {
		c.addrs = map[string]bool{}
	}
	c.addrs[addr] = true
	c.mu.Unlock()
	return c.d.DialContext(ctx, network, addr)
}

// dialed returns the addresses dialed.
func (c *countingDialer) dialed() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.addrs)
}

// startForwarder starts a forwarder on 127.0.0.1:0 and closes it when the
// test ends.
func startForwarder(t testing.TB, opts Options) *Forwarder {
	t.Helper()
	if !opts.Addr.IsValid() && opts.PacketConn == nil {
		opts.Addr = netip.MustParseAddrPort("127.0.0.1:0")
	}
	f, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return f
}

// ask sends one query for name and type to addr over network ("udp" or
// "tcp") and returns the answer.
func ask(addr netip.AddrPort, network, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return exchange(addr, network, m)
}

func exchange(addr netip.AddrPort, network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 10 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr.String())
	return r, err
}

// answerA returns the address in r's first A or AAAA record, or the
// rcode's name when there is none.
func answerA(r *dns.Msg) string {
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			return rr.A.String()
		case *dns.AAAA:
			return rr.AAAA.String()
		}
	}
	return dns.RcodeToString[r.Rcode]
}

// selfSigned returns a self-signed certificate for names and IPs, and a
// pool that trusts it.
func selfSigned(t testing.TB, names []string, ips ...netip.Addr) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netext test DNS server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
