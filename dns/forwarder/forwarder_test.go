package forwarder

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/netext/netext/internal/dnstesting"
)

func TestRouting(t *testing.T) {
	corp := loopbackServer(t, "corp", "10.0.0.1")
	lab := loopbackServer(t, "lab", "10.0.0.2")
	def := loopbackServer(t, "default", "10.0.0.9")
	tunnel, underlay := new(countingDialer), new(countingDialer)

	split := Rules{
		Scopes: []Scope{
			{Name: "corp", Domains: []string{"corp.example", "10.in-addr.arpa."}, Upstreams: []Upstream{corp.upstream(UDP)}, Dialer: tunnel},
			{Name: "lab", Domains: []string{"Lab.Corp.Example."}, Upstreams: []Upstream{lab.upstream(TCP)}, Dialer: tunnel},
		},
		Default: Scope{Upstreams: []Upstream{def.upstream(UDP)}, Dialer: underlay},
	}
	full := split
	full.Scopes = slices.Clone(split.Scopes)
	full.Scopes[0].Domains = []string{"", "corp.example"}

	f := startForwarder(t, Options{Rules: split})
	tests := []struct {
		name      string
		rules     Rules
		query     string
		qtype     uint16
		network   string
		wantFrom  string
		wantScope string
	}{
		{"tunnel domain itself", split, "corp.example", dns.TypeA, "udp", "10.0.0.1", "corp"},
		{"name under tunnel domain", split, "www.corp.example", dns.TypeA, "udp", "10.0.0.1", "corp"},
		{"case does not matter", split, "WWW.CoRp.ExAmPlE", dns.TypeA, "udp", "10.0.0.1", "corp"},
		{"AAAA", split, "www.corp.example", dns.TypeAAAA, "tcp", "2001:db8:ffff::1", "corp"},
		{"reverse zone", split, "4.3.2.10.in-addr.arpa", dns.TypeA, "udp", "10.0.0.1", "corp"},
		{"longest suffix wins", split, "host.lab.corp.example", dns.TypeA, "udp", "10.0.0.2", "lab"},
		{"label boundary", split, "notcorp.example", dns.TypeA, "udp", "10.0.0.9", "default"},
		{"parent of tunnel domain", split, "example", dns.TypeA, "tcp", "10.0.0.9", "default"},
		{"other name", split, "www.example.org", dns.TypeA, "udp", "10.0.0.9", "default"},
		{"full tunnel: other name", full, "www.example.org", dns.TypeA, "udp", "10.0.0.1", "corp"},
		{"full tunnel: root", full, ".", dns.TypeA, "udp", "10.0.0.1", "corp"},
		{"full tunnel: longer scope still wins", full, "host.lab.corp.example", dns.TypeA, "tcp", "10.0.0.2", "lab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.SetRules(tt.rules); err != nil {
				t.Fatalf("SetRules: %v", err)
			}
			before, _ := f.Stats().Scope(tt.wantScope)
			r, err := ask(f.Addr(), tt.network, tt.query, tt.qtype)
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			if got := answerA(r); got != tt.wantFrom {
				t.Errorf("answer from %s, want %s", got, tt.wantFrom)
			}
			after, _ := f.Stats().Scope(tt.wantScope)
			if after.Queries != before.Queries+1 || after.Answers != before.Answers+1 {
				t.Errorf("scope %s counted %d queries and %d answers, want 1 and 1", tt.wantScope, after.Queries-before.Queries, after.Answers-before.Answers)
			}
		})
	}

	// The underlay never saw a tunnel domain.
	for _, n := range def.names() {
		if n := "." + strings.ToLower(n); strings.HasSuffix(n, ".corp.example.") || strings.HasSuffix(n, ".10.in-addr.arpa.") {
			t.Errorf("default server saw %q", n)
		}
	}
	if corp.names() == nil || lab.names() == nil || def.names() == nil {
		t.Errorf("a server saw nothing: corp %q, lab %q, default %q", corp.names(), lab.names(), def.names())
	}
	// Tunnel upstreams were dialed through the tunnel dialer only, the
	// default one through the underlay dialer only.
	tunnelAddrs := map[string]bool{corp.addr.String(): true, lab.addr.String(): true}
	if diff := cmp.Diff(tunnel.dialed(), tunnelAddrs); diff != "" {
		t.Errorf("tunnel dialer's destinations (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(underlay.dialed(), map[string]bool{def.addr.String(): true}); diff != "" {
		t.Errorf("underlay dialer's destinations (-got +want):\n%s", diff)
	}
}

func TestStreamConnectionReuse(t *testing.T) {
	for _, tt := range []struct {
		name      string
		perConn   int // queries the server takes per connection; -1: any
		wantDials int64
	}{
		{"server keeps the connection", -1, 1},
		{"server closes after each query", 1, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer("up", "10.0.0.1")
			cert, pool := selfSigned(t, []string{"up.test"})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			dnstesting.Serve(t, &dns.Server{
				Listener:      tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}),
				Handler:       s,
				MaxTCPQueries: tt.perConn,
			})
			d := new(countingDialer)
			f := startForwarder(t, Options{RootCAs: pool, Rules: Rules{Default: Scope{
				Dialer:    d,
				Upstreams: []Upstream{{Protocol: TLS, Addr: netip.MustParseAddrPort(ln.Addr().String()), ServerName: "up.test"}},
			}}})
			for i := range 5 {
				r, err := ask(f.Addr(), "udp", fmt.Sprintf("q%d.example", i), dns.TypeA)
				if err != nil {
					t.Fatal(err)
				}
				if got := answerA(r); got != "10.0.0.1" {
					t.Fatalf("query %d answered %s", i, got)
				}
			}
			if got := d.dials.Load(); got != tt.wantDials {
				t.Errorf("%d dials for 5 queries, want %d", got, tt.wantDials)
			}
		})
	}
}

// behave returns a handler that answers with rcode, or never answers
// when rcode is -1.
func behave(rcode int) func(s *testServer, w dns.ResponseWriter, r *dns.Msg) {
	return func(s *testServer, w dns.ResponseWriter, r *dns.Msg) {
		switch rcode {
		case -1:
			return
		case dns.RcodeSuccess:
			w.WriteMsg(s.answer(r))
		default:
			m := new(dns.Msg)
			m.SetRcode(r, rcode)
			w.WriteMsg(m)
		}
	}
}

func TestFailover(t *testing.T) {
	const timeout = -1
	tests := []struct {
		name          string
		tunnel        []int // behaviour of each tunnel upstream
		allowFailover bool
		want          string // answer's address or rcode
		wantDefault   int    // queries the default server gets
	}{
		{"SERVFAIL, no failover", []int{dns.RcodeServerFailure}, false, "SERVFAIL", 0},
		{"SERVFAIL, failover", []int{dns.RcodeServerFailure}, true, "10.0.0.9", 1},
		{"REFUSED, no failover", []int{dns.RcodeRefused}, false, "SERVFAIL", 0},
		{"REFUSED, failover", []int{dns.RcodeRefused}, true, "10.0.0.9", 1},
		{"timeout, no failover", []int{timeout}, false, "SERVFAIL", 0},
		{"timeout, failover", []int{timeout}, true, "10.0.0.9", 1},
		{"NXDOMAIN is an answer", []int{dns.RcodeNameError}, true, "NXDOMAIN", 0},
		{"NOTIMP is an answer", []int{dns.RcodeNotImplemented}, true, "NOTIMP", 0},
		{"second tunnel upstream answers", []int{dns.RcodeServerFailure, dns.RcodeSuccess}, true, "10.0.0.2", 0},
		{"second tunnel upstream after a timeout", []int{timeout, dns.RcodeSuccess}, false, "10.0.0.2", 0},
		{"all tunnel upstreams fail", []int{dns.RcodeServerFailure, timeout}, true, "10.0.0.9", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ups []Upstream
			for i, b := range tt.tunnel {
				s := newTestServer(fmt.Sprint("t", i), fmt.Sprint("10.0.0.", i+1))
				s.handle = behave(b)
				pc, ln := listenLoopback(t)
				s.start(t, pc, ln)
				ups = append(ups, s.upstream(UDP))
			}
			def := loopbackServer(t, "default", "10.0.0.9")
			f := startForwarder(t, Options{
				UpstreamTimeout: 300 * time.Millisecond,
				QueryTimeout:    5 * time.Second,
				Attempts:        1,
				Rules: Rules{
					Scopes:  []Scope{{Name: "tunnel", Domains: []string{"corp.example"}, Upstreams: ups, AllowFailover: tt.allowFailover}},
					Default: Scope{Upstreams: []Upstream{def.upstream(UDP)}},
				},
			})
			r, err := ask(f.Addr(), "udp", "host.corp.example", dns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if got := answerA(r); got != tt.want {
				t.Errorf("answer %s, want %s", got, tt.want)
			}
			if got := len(def.queries()); got != tt.wantDefault {
				t.Errorf("default server got %d queries, want %d", got, tt.wantDefault)
			}
			sc, _ := f.Stats().Scope("tunnel")
			if got := int(sc.Failovers); got != tt.wantDefault {
				t.Errorf("scope counted %d failovers, want %d", got, tt.wantDefault)
			}
		})
	}
}

func TestNoDefaultUpstreams(t *testing.T) {
	f := startForwarder(t, Options{})
	r, err := ask(f.Addr(), "udp", "www.example.org", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	s := newTestServer("big", "10.0.0.1")
	const records = 60 // about 1 KB: more than 512 bytes, less than 4096
	s.handle = func(s *testServer, w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncated = true // whatever the client's buffer: force TCP
			w.WriteMsg(m)
			return
		}
		for i := range records {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(10, 1, byte(i>>8), byte(i)),
			})
		}
		w.WriteMsg(m)
	}
	pc, ln := listenLoopback(t)
	s.start(t, pc, ln)
	f := startForwarder(t, Options{Rules: Rules{Default: Scope{Upstreams: []Upstream{s.upstream(UDP)}}}})

	// An EDNS client with a large buffer gets everything over UDP.
	m := new(dns.Msg)
	m.SetQuestion("big.example.", dns.TypeA)
	m.SetEdns0(4096, false)
	r, err := exchange(f.Addr(), "udp", m)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != records || r.Truncated {
		t.Errorf("EDNS client got %d records, truncated %v; want %d, false", len(r.Answer), r.Truncated, records)
	}
	var nets []string
	for _, q := range s.queries() {
		nets = append(nets, q.Net)
	}
	if diff := cmp.Diff(nets, []string{"udp", "tcp"}); diff != "" {
		t.Errorf("upstream transports (-got +want):\n%s", diff)
	}

	// A plain client gets a truncated answer over UDP and all over TCP.
	r, err = ask(f.Addr(), "udp", "big.example", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	r.Compress = true
	if !r.Truncated || r.Len() > dns.MinMsgSize {
		t.Errorf("plain UDP client got truncated %v, %d bytes; want true, at most 512", r.Truncated, r.Len())
	}
	r, err = ask(f.Addr(), "tcp", "big.example", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != records {
		t.Errorf("TCP client got %d records, want %d", len(r.Answer), records)
	}
	st := f.Stats().Scopes[0].Upstreams[0]
	if st.Queries != 6 || st.Answers != 3 || st.Failures != 0 {
		t.Errorf("upstream counters %+v, want 6 queries (3 over UDP, 3 over TCP), 3 answers", st)
	}
}

func TestDNSOverTLS(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	cert, pool := selfSigned(t, []string{"dot.test"}, lo)
	s := newTestServer("dot", "10.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := s.startTLS(t, ln, cert)

	tests := []struct {
		name       string
		serverName string
		roots      bool
		want       string
	}{
		{"server name", "dot.test", true, "10.0.0.1"},
		{"IP address", "", true, "10.0.0.1"},
		{"wrong name", "wrong.test", true, "SERVFAIL"},
		{"system roots", "dot.test", false, "SERVFAIL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{
				Attempts: 1,
				Rules: Rules{Scopes: []Scope{{
					Name:      "tunnel",
					Domains:   []string{""},
					Upstreams: []Upstream{{Protocol: TLS, Addr: addr, ServerName: tt.serverName}},
				}}},
			}
			if tt.roots {
				opts.RootCAs = pool
			}
			f := startForwarder(t, opts)
			before := len(s.queries())
			r, err := ask(f.Addr(), "udp", "www.corp.example", dns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if got := answerA(r); got != tt.want {
				t.Errorf("answer %s, want %s", got, tt.want)
			}
			seen := s.queries()[before:]
			if tt.want == "SERVFAIL" && len(seen) != 0 {
				t.Errorf("server answered %d queries over an unverified connection", len(seen))
			}
			for _, q := range seen {
				if q.Net != "tls" {
					t.Errorf("query arrived over %s, want tls", q.Net)
				}
			}
		})
	}
}

func TestDNSOverHTTPS(t *testing.T) {
	cert, pool := selfSigned(t, []string{"doh.test"})
	s := newTestServer("doh", "10.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := s.startHTTPS(t, ln, cert)
	var logs bytes.Buffer
	logMu := new(sync.Mutex)
	f := startForwarder(t, Options{
		RootCAs:  pool,
		Attempts: 1,
		Logger:   slog.New(slog.NewTextHandler(lockedWriter{logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Rules: Rules{Scopes: []Scope{
			{Name: "doh", Domains: []string{"corp.example"}, Upstreams: []Upstream{{Protocol: HTTPS, URL: "https://doh.test/dns-query", Addr: addr}}},
			{Name: "bad path", Domains: []string{"bad.example"}, Upstreams: []Upstream{{Protocol: HTTPS, URL: "https://doh.test/s3cr3t-t0ken", Addr: addr}}},
		}},
	})

	m := new(dns.Msg)
	m.SetQuestion("www.corp.example.", dns.TypeAAAA)
	m.Id = 0x4242
	r, err := exchange(f.Addr(), "udp", m)
	if err != nil {
		t.Fatal(err)
	}
	if got := answerA(r); got != "2001:db8:ffff::1" || r.Id != 0x4242 {
		t.Errorf("answer %s with ID %#x, want 2001:db8:ffff::1 with ID 0x4242", got, r.Id)
	}
	seen := s.queries()
	if len(seen) != 1 || seen[0].Proto != "HTTP/2.0" || seen[0].ID != 0 {
		t.Errorf("server saw %+v, want one HTTP/2.0 query with ID 0", seen)
	}

	r, err = ask(f.Addr(), "udp", "www.bad.example", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s from a 404 endpoint, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	st, _ := f.Stats().Scope("bad path")
	logMu.Lock()
	defer logMu.Unlock()
	for _, s := range []string{logs.String(), fmt.Sprint(st)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("the URL's path leaked into logs or stats: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "www.corp.example") {
		t.Errorf("debug log lacks the query name:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestIDsAndSpoofing(t *testing.T) {
	s := newTestServer("up", "10.0.0.1")
	s.handle = func(s *testServer, w dns.ResponseWriter, r *dns.Msg) {
		// A forged answer first: wrong ID, then wrong question; then the
		// real one.
		forged := s.answer(r)
		forged.Id++
		forged.Answer[0].(*dns.A).A = net.IPv4(6, 6, 6, 6)
		w.WriteMsg(forged)
		other := s.answer(r)
		other.Question[0].Name = "evil.example."
		other.Answer[0].(*dns.A).A = net.IPv4(6, 6, 6, 7)
		w.WriteMsg(other)
		w.WriteMsg(s.answer(r))
	}
	pc, ln := listenLoopback(t)
	s.start(t, pc, ln)
	f := startForwarder(t, Options{Rules: Rules{Default: Scope{Upstreams: []Upstream{s.upstream(UDP)}}}})
	for i := range 10 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("n%d.example.", i), dns.TypeA)
		m.Id = 0x1234
		r, err := exchange(f.Addr(), "udp", m)
		if err != nil {
			t.Fatal(err)
		}
		if got := answerA(r); got != "10.0.0.1" || r.Id != 0x1234 {
			t.Errorf("answer %s with ID %#x, want 10.0.0.1 with ID 0x1234", got, r.Id)
		}
	}
	ids := map[uint16]bool{}
	for _, q := range s.queries() {
		ids[q.ID] = true
	}
	if len(ids) < 2 {
		t.Errorf("upstream saw IDs %v: not fresh per query", ids)
	}
}

func TestEDNSAndAnswersUnchanged(t *testing.T) {
	s := newTestServer("up", "10.0.0.1")
	var sent []byte // what the upstream sent, ID aside
	s.handle = func(s *testServer, w dns.ResponseWriter, r *dns.Msg) {
		m := s.answer(r)
		m.Answer = append(m.Answer, &dns.AAAA{
			Hdr:  dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 7},
			AAAA: net.ParseIP("2001:db8::7"),
		}, &dns.RFC3597{
			Hdr:   dns.RR_Header{Name: r.Question[0].Name, Rrtype: 65280, Class: dns.ClassINET, Ttl: 7},
			Rdata: "deadbeef",
		})
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer, ExtraText: "old"})
		m.AuthenticatedData = true
		out, _ := m.Pack()
		s.mu.Lock()
		sent = out
		s.mu.Unlock()
		w.Write(out)
	}
	pc, ln := listenLoopback(t)
	s.start(t, pc, ln)
	f := startForwarder(t, Options{Rules: Rules{Default: Scope{Upstreams: []Upstream{s.upstream(UDP)}}}})

	m := new(dns.Msg)
	m.SetQuestion("edns.example.", dns.TypeANY)
	m.SetEdns0(1232, true)
	m.IsEdns0().Option = append(m.IsEdns0().Option,
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()})
	m.CheckingDisabled = true
	r, err := exchange(f.Addr(), "udp", m)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.Pack()
	s.mu.Lock()
	want := bytes.Clone(sent)
	s.mu.Unlock()
	if len(got) < headerLen || len(want) < headerLen || !bytes.Equal(got[2:], want[2:]) || r.Id != m.Id {
		t.Errorf("answer changed on the way:\ngot  %x\nwant %x", got, want)
	}
	q := s.queries()[0].Msg
	if diff := cmp.Diff(q.IsEdns0().String(), m.IsEdns0().String()); diff != "" || !q.CheckingDisabled || !q.RecursionDesired {
		t.Errorf("upstream query's OPT (-got +want):\n%s\nCD %v RD %v", diff, q.CheckingDisabled, q.RecursionDesired)
	}
}

func TestConcurrentQueries(t *testing.T) {
	a := loopbackServer(t, "a", "10.0.0.1")
	b := loopbackServer(t, "b", "10.0.0.2")
	f := startForwarder(t, Options{Rules: Rules{
		Scopes:  []Scope{{Name: "a", Domains: []string{"a.example"}, Upstreams: []Upstream{a.upstream(UDP)}}},
		Default: Scope{Upstreams: []Upstream{b.upstream(TCP)}},
	}})
	// 64 clients at once, 10 queries each: many in flight, yet few enough
	// for the sockets' receive buffers, since UDP has no flow control.
	const workers, each, n = 64, 10, 640
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range workers {
		wg.Go(func() {
			for k := range each {
				i := w*each + k
				name := fmt.Sprintf("q%d.b.example.", i)
				want := "b"
				if i%2 == 0 {
					name, want = fmt.Sprintf("q%d.a.example.", i), "a"
				}
				network := []string{"udp", "tcp"}[i%3%2]
				r, err := ask(f.Addr(), network, name, dns.TypeTXT)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					continue
				}
				if len(r.Answer) != 1 || !slices.Equal(r.Answer[0].(*dns.TXT).Txt, []string{want, name}) {
					errs <- fmt.Errorf("%s: answer %v, want TXT %q %q", name, r.Answer, want, name)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := f.Stats()
	if st.Queries != n || st.Rejected != 0 {
		t.Errorf("stats: %d queries, %d rejected; want %d, 0", st.Queries, st.Rejected, n)
	}
}

func TestInFlightLimit(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	s := newTestServer("slow", "10.0.0.1")
	s.handle = func(s *testServer, w dns.ResponseWriter, r *dns.Msg) {
		arrived <- struct{}{}
		<-release
		w.WriteMsg(s.answer(r))
	}
	pc, ln := listenLoopback(t)
	s.start(t, pc, ln)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's shutdown, which waits for its handlers
	f := startForwarder(t, Options{
		MaxInFlight:     2,
		UpstreamTimeout: 20 * time.Second,
		QueryTimeout:    20 * time.Second,
		Rules:           Rules{Default: Scope{Upstreams: []Upstream{s.upstream(TCP)}}},
	})
	answers := make(chan string, 2)
	for i := range 2 {
		go func() {
			r, err := ask(f.Addr(), "udp", fmt.Sprintf("slow%d.example", i), dns.TypeA)
			if err != nil {
				answers <- err.Error()
				return
			}
			answers <- answerA(r)
		}()
	}
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("queries never reached the upstream")
		}
	}
	r, err := ask(f.Addr(), "udp", "third.example", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("third query: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if st := f.Stats(); st.Rejected != 1 {
		t.Errorf("rejected %d, want 1", st.Rejected)
	}
	unblock()
	for range 2 {
		if got := <-answers; got != "10.0.0.1" {
			t.Errorf("blocked query answered %s, want 10.0.0.1", got)
		}
	}
}

func TestSetRulesUnderLoad(t *testing.T) {
	a := loopbackServer(t, "a", "10.0.0.1")
	b := loopbackServer(t, "b", "10.0.0.2")
	def := loopbackServer(t, "default", "10.0.0.9")
	rules := func(s *testServer, p Protocol) Rules {
		return Rules{
			Scopes:  []Scope{{Name: "tunnel", Domains: []string{"corp.example"}, Upstreams: []Upstream{s.upstream(p)}}},
			Default: Scope{Upstreams: []Upstream{def.upstream(UDP)}},
		}
	}
	f := startForwarder(t, Options{Rules: rules(a, UDP)})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Go(func() {
			for j := 0; ctx.Err() == nil; j++ {
				r, err := ask(f.Addr(), []string{"udp", "tcp"}[i%2], fmt.Sprintf("h%d-%d.corp.example", i, j), dns.TypeA)
				if err != nil {
					errs <- err
					return
				}
				if got := answerA(r); got != "10.0.0.1" && got != "10.0.0.2" {
					errs <- fmt.Errorf("answer %s, want 10.0.0.1 or 10.0.0.2", got)
					return
				}
			}
		})
	}
	for i := range 200 {
		r := rules(a, UDP)
		if i%2 == 1 {
			r = rules(b, TCP)
		}
		if err := f.SetRules(r); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(def.queries()); n != 0 {
		t.Errorf("default server got %d tunnel queries during the swaps", n)
	}
	if len(a.queries()) == 0 || len(b.queries()) == 0 {
		t.Errorf("swaps not seen: a got %d queries, b %d", len(a.queries()), len(b.queries()))
	}
}

func TestSetRulesInvalid(t *testing.T) {
	good := loopbackServer(t, "good", "10.0.0.1")
	def := loopbackServer(t, "default", "10.0.0.9")
	valid := Rules{
		Scopes:  []Scope{{Name: "tunnel", Domains: []string{"corp.example"}, Upstreams: []Upstream{good.upstream(UDP)}}},
		Default: Scope{Upstreams: []Upstream{def.upstream(UDP)}},
	}
	f := startForwarder(t, Options{Rules: valid})
	up := good.upstream(UDP)
	tests := []struct {
		name  string
		rules Rules
		want  []string // problem paths
	}{
		{"duplicate domain across scopes", Rules{Scopes: []Scope{
			{Name: "a", Domains: []string{"corp.example"}, Upstreams: []Upstream{up}},
			{Name: "b", Domains: []string{"CORP.example."}, Upstreams: []Upstream{up}},
		}}, []string{"scopes[1].domains[0]"}},
		{"two full tunnels", Rules{Scopes: []Scope{
			{Name: "a", Domains: []string{""}, Upstreams: []Upstream{up}},
			{Name: "b", Domains: []string{"."}, Upstreams: []Upstream{up}},
		}}, []string{"scopes[1].domains[0]"}},
		{"bad domains", Rules{Scopes: []Scope{{Name: "a", Domains: []string{"a..b", ".lead", "sp ace"}, Upstreams: []Upstream{up}}}},
			[]string{"scopes[0].domains[0]", "scopes[0].domains[1]", "scopes[0].domains[2]"}},
		{"no domains", Rules{Scopes: []Scope{{Name: "a", Upstreams: []Upstream{up}}}}, []string{"scopes[0].domains"}},
		{"names", Rules{Scopes: []Scope{
			{Domains: []string{"a"}, Upstreams: []Upstream{up}},
			{Name: "default", Domains: []string{"b"}, Upstreams: []Upstream{up}},
			{Name: "x", Domains: []string{"c"}, Upstreams: []Upstream{up}},
			{Name: "x", Domains: []string{"d"}, Upstreams: []Upstream{up}},
		}}, []string{"scopes[0].name", "scopes[1].name", "scopes[3].name"}},
		{"no upstreams", Rules{Scopes: []Scope{{Name: "a", Domains: []string{"a"}}}}, []string{"scopes[0].upstreams"}},
		{"unreachable-looking server address", Rules{Scopes: []Scope{{Name: "a", Domains: []string{"a"}, Upstreams: []Upstream{
			{Protocol: UDP, Addr: netip.MustParseAddrPort("0.0.0.0:53")},
			{Protocol: UDP},
		}}}}, []string{"scopes[0].upstreams[0].addr", "scopes[0].upstreams[1].addr"}},
		{"invalid DoH URLs", Rules{Scopes: []Scope{{Name: "a", Domains: []string{"a"}, Upstreams: []Upstream{
			{Protocol: HTTPS, URL: "http://192.0.2.1/dns-query"},
			{Protocol: HTTPS, URL: "https://doh.example/dns-query"},
			{Protocol: HTTPS, URL: "https://user:pw@192.0.2.1/dns-query"},
			{Protocol: HTTPS, URL: "https://192.0.2.1:99999/dns-query"},
			{Protocol: HTTPS},
		}}}}, []string{
			"scopes[0].upstreams[0].url", "scopes[0].upstreams[1].addr", "scopes[0].upstreams[2].url",
			"scopes[0].upstreams[3].url", "scopes[0].upstreams[4].url",
		}},
		{"misplaced fields", Rules{Scopes: []Scope{{Name: "a", Domains: []string{"a"}, Upstreams: []Upstream{
			{Protocol: UDP, Addr: up.Addr, ServerName: "x.example"},
			{Protocol: TLS, Addr: up.Addr, ServerName: "not a name"},
			{Protocol: TCP, Addr: up.Addr, URL: "https://192.0.2.1/"},
			{Protocol: 9, Addr: up.Addr},
		}}}}, []string{
			"scopes[0].upstreams[0].serverName", "scopes[0].upstreams[1].serverName",
			"scopes[0].upstreams[2].url", "scopes[0].upstreams[3].protocol",
		}},
		{"duplicate upstream", Rules{Scopes: []Scope{{Name: "a", Domains: []string{"a"}, Upstreams: []Upstream{up, up}}}}, []string{"scopes[0].upstreams[1]"}},
		{"default with domains", Rules{Default: Scope{Name: "x", Domains: []string{"a"}, Upstreams: []Upstream{up}}}, []string{"default.domains", "default.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.SetRules(tt.rules)
			var rerr *RulesError
			if !errors.As(err, &rerr) {
				t.Fatalf("SetRules: %v, want a *RulesError", err)
			}
			var paths []string
			for _, p := range rerr.Problems {
				paths = append(paths, p.Path)
			}
			if diff := cmp.Diff(paths, tt.want); diff != "" {
				t.Errorf("problem paths (-got +want):\n%s\nerror: %v", diff, err)
			}
			// The previous rules still hold.
			r, err := ask(f.Addr(), "udp", "www.corp.example", dns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if got := answerA(r); got != "10.0.0.1" {
				t.Errorf("after a refused SetRules the tunnel domain is answered by %s, want 10.0.0.1", got)
			}
		})
	}
	if _, err := New(Options{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Rules: tests[0].rules}); err == nil {
		t.Error("New took invalid rules")
	}
}

func TestRejectsLoops(t *testing.T) {
	ap := netip.MustParseAddrPort
	pc, ln := listenLoopback(t)
	t.Cleanup(func() { pc.Close(); ln.Close() })
	given := ap(pc.LocalAddr().String())
	tests := []struct {
		name     string
		opts     Options
		upstream Upstream
		loops    bool
	}{
		{"same address", Options{Addr: ap("127.0.0.153:53")}, Upstream{Protocol: UDP, Addr: ap("127.0.0.153:0")}, true},
		{"TCP to the same address", Options{Addr: ap("127.0.0.153:5353")}, Upstream{Protocol: TCP, Addr: ap("127.0.0.153:5353")}, true},
		{"wildcard listener, loopback upstream", Options{Addr: ap("0.0.0.0:53")}, Upstream{Protocol: UDP, Addr: ap("127.0.0.1:53")}, true},
		{"given socket", Options{PacketConn: pc, Listener: ln}, Upstream{Protocol: UDP, Addr: given}, true},
		{"other port", Options{Addr: ap("127.0.0.153:53")}, Upstream{Protocol: TLS, Addr: ap("127.0.0.153:0")}, false},
		{"other address", Options{Addr: ap("127.0.0.153:53")}, Upstream{Protocol: UDP, Addr: ap("127.0.0.53:53")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Rules = Rules{Default: Scope{Upstreams: []Upstream{tt.upstream}}}
			f, err := New(tt.opts)
			if err == nil {
				f.Close()
			}
			var rerr *RulesError
			if got := errors.As(err, &rerr); got != tt.loops {
				t.Errorf("New: %v; want a loop reported: %v", err, tt.loops)
			}
		})
	}
}

func TestCloseUnblocks(t *testing.T) {
	// A black hole: reads queries and never answers.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	got := make(chan struct{}, 100)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
			got <- struct{}{}
		}
	}()
	f, err := New(Options{
		Addr:            netip.MustParseAddrPort("127.0.0.1:0"),
		UpstreamTimeout: time.Minute,
		QueryTimeout:    time.Minute,
		Rules:           Rules{Default: Scope{Upstreams: []Upstream{{Protocol: UDP, Addr: netip.MustParseAddrPort(hole.LocalAddr().String())}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 20
	answers := make(chan string, n)
	for i := range n {
		go func() {
			r, err := ask(f.Addr(), []string{"udp", "tcp"}[i%2], fmt.Sprintf("q%d.example", i), dns.TypeA)
			if err != nil {
				answers <- err.Error()
				return
			}
			answers <- answerA(r)
		}()
	}
	for range n {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("queries never reached the upstream")
		}
	}
	closed := make(chan error)
	go func() { closed <- f.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs with queries in flight")
	}
	for range n {
		if a := <-answers; a != "SERVFAIL" {
			t.Errorf("query cut short by Close answered %s, want SERVFAIL", a)
		}
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := f.SetRules(Rules{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetRules after Close: %v, want net.ErrClosed", err)
	}
	if err := f.Start(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Start after Close: %v, want net.ErrClosed", err)
	}
}

func TestStartAndOptions(t *testing.T) {
	f := startForwarder(t, Options{})
	if err := f.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	// The same address again: taken.
	g, err := New(Options{Addr: f.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err == nil {
		t.Error("Start on a taken address succeeded")
	}
	g.Close()
	// Close without Start releases given sockets.
	pc, ln := listenLoopback(t)
	h, err := New(Options{PacketConn: pc, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := pc.WriteTo([]byte{0}, pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("given socket still open after Close: %v", err)
	}

	for _, opts := range []Options{
		{},
		{Addr: f.Addr(), Attempts: -1},
		{Addr: f.Addr(), QueryTimeout: -time.Second},
		{PacketConn: pc},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%+v) succeeded", opts)
		}
	}
}

func TestRefusedAndMalformedQueries(t *testing.T) {
	s := loopbackServer(t, "up", "10.0.0.1")
	f := startForwarder(t, Options{Rules: Rules{Default: Scope{Upstreams: []Upstream{s.upstream(UDP)}}}})
	for _, tt := range []struct {
		name  string
		msg   func() *dns.Msg
		want  int
		netw  string
		empty bool // nothing reaches the upstream
	}{
		{"AXFR", func() *dns.Msg { m := new(dns.Msg); m.SetAxfr("corp.example."); return m }, dns.RcodeRefused, "tcp", true},
		{"NOTIFY", func() *dns.Msg { m := new(dns.Msg); m.SetNotify("corp.example."); return m }, dns.RcodeNotImplemented, "udp", true},
		{"UPDATE", func() *dns.Msg { m := new(dns.Msg); m.SetUpdate("corp.example."); return m }, dns.RcodeNotImplemented, "udp", true},
		{"two questions", func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("a.example.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}, dns.RcodeFormatError, "udp", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := exchange(f.Addr(), tt.netw, tt.msg())
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tt.want {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.want])
			}
			if n := len(s.queries()); tt.empty && n != 0 {
				t.Errorf("upstream got %d queries", n)
			}
		})
	}
}

func TestParseUpstream(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		in      string
		want    Upstream
		wantErr string
	}{
		{in: "192.0.2.53", want: Upstream{Protocol: UDP, Addr: ap("192.0.2.53:0")}},
		{in: "192.0.2.53:5353", want: Upstream{Protocol: UDP, Addr: ap("192.0.2.53:5353")}},
		{in: "2001:db8::53", want: Upstream{Protocol: UDP, Addr: ap("[2001:db8::53]:0")}},
		{in: "[2001:db8::53]:53", want: Upstream{Protocol: UDP, Addr: ap("[2001:db8::53]:53")}},
		{in: "udp://192.0.2.53", want: Upstream{Protocol: UDP, Addr: ap("192.0.2.53:0")}},
		{in: "tcp://192.0.2.53", want: Upstream{Protocol: TCP, Addr: ap("192.0.2.53:0")}},
		{in: "tls://192.0.2.53#dns.example.net", want: Upstream{Protocol: TLS, Addr: ap("192.0.2.53:0"), ServerName: "dns.example.net"}},
		{in: "tls://[2001:db8::53]:853", want: Upstream{Protocol: TLS, Addr: ap("[2001:db8::53]:853")}},
		{in: "https://dns.example.net/dns-query#192.0.2.53", want: Upstream{Protocol: HTTPS, URL: "https://dns.example.net/dns-query", Addr: ap("192.0.2.53:0")}},
		{in: "https://192.0.2.53/dns-query", want: Upstream{Protocol: HTTPS, URL: "https://192.0.2.53/dns-query"}},
		{in: "dns.example.net", wantErr: "not an IP address"},
		{in: "ftp://192.0.2.53", wantErr: "unknown scheme"},
		{in: "udp://192.0.2.53#name", wantErr: "only for tls"},
		{in: "tls://192.0.2.53#", wantErr: "empty server name"},
		{in: "https://dns.example.net/dns-query", wantErr: "not an IP address"},
		{in: "https://192.0.2.53/dns-query#dns.example.net", wantErr: "address after '#'"},
		{in: "tcp://0.0.0.0", wantErr: "not a server's address"},
		{in: "224.0.0.251", wantErr: "not a server's address"},
		{in: "255.255.255.255", wantErr: "not a server's address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseUpstream(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			if again, err := ParseUpstream(got.String()); err != nil || again != got {
				t.Errorf("String %q reads back as %v, %v", got.String(), again, err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	f, err := New(Options{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Rules: Rules{Scopes: []Scope{
		{Name: "corp", Domains: []string{"corp.example", "b.c"}, Upstreams: []Upstream{{Addr: netip.MustParseAddrPort("192.0.2.1:53")}}},
		{Name: "sub", Domains: []string{"x.corp.example", "a.b.c"}, Upstreams: []Upstream{{Addr: netip.MustParseAddrPort("192.0.2.2:53")}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs := f.rules.Load()
	for name, want := range map[string]string{
		"corp.example.":        "corp",
		"CORP.EXAMPLE":         "corp",
		"a.corp.example.":      "corp",
		"x.corp.example.":      "sub",
		"y.x.corp.example.":    "sub",
		"xx.corp.example.":     "corp",
		"corp.example.org.":    "default",
		"b.c.":                 "corp",
		"a.b.c.":               "sub",
		"aa.b.c.":              "corp",
		".":                    "default",
		"example.":             "default",
		`a\.corp.example.`:     "default", // the label "a.corp" under example.
		"host.x.corp.example.": "sub",
	} {
		if got := rs.match(name).name; got != want {
			t.Errorf("match(%q) = %s, want %s", name, got, want)
		}
	}
}
