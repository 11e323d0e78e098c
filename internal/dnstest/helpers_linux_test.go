package dnstest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/netext/netext/internal/dnstesting"
	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/providers/sample"
)

// sampleID is the id of the sample provider's manifest.
const sampleID = "org.netext.sample"

// The addresses of the test world.
var (
	serverTunnel = netip.MustParsePrefix("10.99.0.1/24") // the sample server's tunnel address; the tunnel's DNS servers listen here
	clientTunnel = netip.MustParsePrefix("10.99.0.2/24")
	tunnelAnswer = netip.MustParseAddr("10.99.0.80") // the tunnel server's answer for names of the tunnel's domain
	tunnelOther  = netip.MustParseAddr("10.99.0.81") // its answer for any other name
	publicAnswer = netip.MustParseAddr("192.0.2.81") // the underlay server's answer for every name
	serverName   = "dns.corp.example"                // in the DoT and DoH servers' certificate
)

// root is a directory under /run, writable by root alone, with the
// executables (bin) and the provider manifest (providers.d): the registry
// refuses providers whose files others could change.
var root string

func TestMain(m *testing.M) { os.Exit(testproc.RunInstalled(m, "netext-dnstest-", &root)) }

// installation is netextd with the sample provider, in root.
var installation = testproc.SampleInstallation(sampleID)

// bin returns the path of an executable built for the tests.
func bin(t *testing.T, name string) string { return installation.Bin(t, root, name) }

// env is one test's world.
type env struct {
	t        *testing.T
	tp       *nettest.Topology
	key      sample.Key
	server   netip.AddrPort // the sample server
	dir      string         // netextd's state, socket, the CA
	resolv   string         // the client namespace's resolv.conf, as netextd sees it at /etc/resolv.conf
	original []byte         // its content before the test

	tunnelDNS, publicDNS *dnsServer
	caFile               string // PEM of the CA of the DoT and DoH servers
	daemonEnv            []string
	dnsMode              string
}

// newEnv builds the topology with the sample server, the DNS servers and
// the client namespace's resolv.conf (content resolvConf).
func newEnv(t *testing.T, resolvConf string) *env {
	t.Helper()
	nettest.RequireRoot(t)
	bin(t, "netextd")
	tp := nettest.NewTopology(t)
	tp.Server.Sysctl(t, "ipv4/ip_forward", "1")
	tp.Internet.Run(t, "ip", "-4", "route", "add", "10.99.0.0/16", "via", tp.ServerAddr4.Addr().String())
	key, err := sample.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := testproc.DirIn(t, root)
	e := &env{t: t, tp: tp, key: key, dir: dir}
	e.setResolvConf(resolvConf)
	e.server = e.startSampleServer(51900)
	e.publicDNS = startDNSServer(t, tp.Internet, "underlay", tp.PublicHost4, func(string) netip.Addr { return publicAnswer })
	e.tunnelDNS = startDNSServer(t, tp.Server, "tunnel", serverTunnel.Addr(), func(name string) netip.Addr {
		if name == "corp.example." || strings.HasSuffix(name, ".corp.example.") {
			return tunnelAnswer
		}
		return tunnelOther
	})
	e.caFile = e.tunnelDNS.serveTLS(t, tp.Server, dir)
	tp.Client.WaitPing(t, tp.ServerAddr4.Addr(), 15*time.Second)
	return e
}

// setResolvConf gives the client namespace's own resolv.conf the content.
func (e *env) setResolvConf(content string) {
	e.original = []byte(content)
	e.resolv = e.tp.Client.SetResolvConf(e.t, content, 0o644)
}

// resolvConf returns the client namespace's resolv.conf.
func (e *env) resolvConf() string {
	e.t.Helper()
	data, err := os.ReadFile(e.resolv)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(data)
}

// checkRestored checks that resolv.conf is what it was before the test.
func (e *env) checkRestored(when string) {
	e.t.Helper()
	if got := e.resolvConf(); got != string(e.original) {
		e.t.Errorf("resolv.conf %s:\n%s\nwant, as before:\n%s", when, got, e.original)
	}
}

// startSampleServer runs a sample server in the server namespace.
func (e *env) startSampleServer(port uint16) netip.AddrPort {
	t := e.t
	listen := netip.AddrPortFrom(e.tp.ServerAddr4.Addr(), port)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(e.key.Base64()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := e.tp.Server.Command(context.Background(), bin(t, "netext-sample-server"), "-listen", listen.String(),
		"-key-file", keyFile, "-tun", "sample0", "-address", serverTunnel.String())
	p := testproc.Start(t, "sample server", cmd)
	p.WaitOutput(t, "sample server: listening", 20*time.Second)
	return listen
}

// daemon is a netextd in the client namespace.
type daemon struct {
	p *testproc.Proc
}

// startDaemon starts netextd in the client namespace and waits until it
// serves.
func (e *env) startDaemon() *daemon {
	t := e.t
	t.Helper()
	args := []string{"--state-dir", filepath.Join(e.dir, "state"), "--socket", e.socket(),
		"--providers-dir", filepath.Join(root, "providers.d"), "--log-level", "debug"}
	if e.dnsMode != "" {
		args = append(args, "--dns-mode", e.dnsMode)
	}
	cmd := e.tp.Client.Command(context.Background(), bin(t, "netextd"), args...)
	cmd.Env = append(os.Environ(), "NETEXT_TEST_DNS_ROOT_CAS="+e.caFile)
	cmd.Env = append(cmd.Env, e.daemonEnv...)
	d := &daemon{p: testproc.Start(t, "netextd", cmd)}
	d.p.WaitOutput(t, "netextd ready", 20*time.Second)
	return d
}

func (e *env) socket() string { return filepath.Join(e.dir, "netextd.sock") }

// kill kills netextd with SIGKILL.
func (d *daemon) kill(t *testing.T) {
	d.p.Cmd.Process.Kill()
	d.p.Wait(20 * time.Second)
}

// netext runs the netext command; it returns the output and the error.
func (e *env) netext(stdin string, args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(e.t, "netext"), append([]string{"--socket", e.socket()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *env) mustNetext(args ...string) string {
	e.t.Helper()
	out, err := e.netext("", args...)
	if err != nil {
		e.t.Fatalf("netext %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// addConfig saves a configuration of the sample provider called name with
// the provider configuration pc (see sample.ProviderConfig).
func (e *env) addConfig(name string, pc map[string]any) {
	e.t.Helper()
	pc["addresses"] = []string{clientTunnel.String()}
	pc["mtu"] = 1420
	js, _ := json.Marshal(pc)
	if out, err := e.netext(e.key.Base64()+"\n", "config", "add", name, "--provider", sampleID,
		"--server", e.server.String(), "--provider-config", string(js), "--enabled", "--secret-file", "-"); err != nil {
		e.t.Fatalf("netext config add: %v\n%s", err, out)
	}
}

// lookup resolves name's IPv4 address in the client namespace through the
// C library (getent), which reads the namespace's resolv.conf.
func (e *env) lookup(name string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := e.tp.Client.Command(ctx, "getent", "ahostsv4", name).CombinedOutput()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("getent ahostsv4 %s: %v: %s", name, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return netip.Addr{}, fmt.Errorf("getent ahostsv4 %s: no answer", name)
	}
	return netip.ParseAddr(f[0])
}

// mustLookup checks that name resolves to want in the client namespace.
func (e *env) mustLookup(name string, want netip.Addr) {
	e.t.Helper()
	got, err := e.lookup(name)
	if err != nil {
		e.t.Errorf("lookup %s: %v", name, err)
		return
	}
	if got != want {
		e.t.Errorf("lookup %s: %v, want %v", name, got, want)
	}
}

// dnsServer is a DNS server in a namespace that answers every A query
// with the address answer gives for the name, and counts the queries by
// name.
type dnsServer struct {
	name   string
	addr   netip.Addr
	answer func(name string) netip.Addr

	mu      sync.Mutex
	queries map[string]int // by lower-case name with the final dot
}

// startDNSServer serves DNS on addr port 53, UDP and TCP, inside ns.
func startDNSServer(t *testing.T, ns *nettest.NS, name string, addr netip.Addr, answer func(string) netip.Addr) *dnsServer {
	t.Helper()
	s := &dnsServer{name: name, addr: addr, answer: answer, queries: map[string]int{}}
	var (
		pc net.PacketConn
		ln net.Listener
	)
	ap := netip.AddrPortFrom(addr, 53).String()
	err := ns.Do(func() (err error) {
		if pc, err = net.ListenPacket("udp", ap); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", ap)
		return err
	})
	if err != nil {
		t.Fatalf("%s DNS server: %v", name, err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		dnstesting.Serve(t, srv)
	}
	return s
}

func (s *dnsServer) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	via := w.LocalAddr().Network()
	if ta, ok := w.LocalAddr().(*net.TCPAddr); ok && ta.Port == 853 {
		via = "tls"
	}
	w.WriteMsg(s.reply(req, via))
}

// reply answers req, which came over via: udp, tcp, tls or https.
func (s *dnsServer) reply(req *mdns.Msg, via string) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		s.mu.Lock()
		s.queries[via+" "+name]++
		s.mu.Unlock()
		if q.Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 1},
				A:   s.answer(name).AsSlice(),
			})
		}
	}
	return m
}

// count returns how many queries for name (or, with a leading ".", for
// names within that domain) the server got over via ("" for any
// transport).
func (s *dnsServer) count(via, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, c := range s.queries {
		v, q, _ := strings.Cut(k, " ")
		if via != "" && v != via {
			continue
		}
		if q == name || strings.HasPrefix(name, ".") && (strings.HasSuffix(q, name) || "."+q == name) {
			n += c
		}
	}
	return n
}

// names returns the names the server was asked for.
func (s *dnsServer) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for q := range s.queries {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}

// serveTLS serves the same answers over TLS (port 853) and HTTPS (port
// 443, path /dns-query) inside ns, with a certificate for the server's
// address and serverName from a CA of the test's own, whose PEM file in
// dir it returns.
func (s *dnsServer) serveTLS(t *testing.T, ns *nettest.NS, dir string) string {
	t.Helper()
	caFile, cert := newCertificates(t, dir, s.addr)
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	var dot, doh net.Listener
	err := ns.Do(func() (err error) {
		if dot, err = net.Listen("tcp", netip.AddrPortFrom(s.addr, 853).String()); err != nil {
			return err
		}
		doh, err = net.Listen("tcp", netip.AddrPortFrom(s.addr, 443).String())
		return err
	})
	if err != nil {
		t.Fatalf("DoT/DoH listeners: %v", err)
	}
	dotConf := conf.Clone()
	dotConf.NextProtos = []string{"dot"}
	dnstesting.Serve(t, &mdns.Server{Listener: tls.NewListener(dot, dotConf), Net: "tcp-tls", Handler: s})

	hs := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), TLSConfig: conf, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(doh, "", "") }()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return caFile
}

// serveHTTP answers DNS over HTTPS (RFC 8484) POST requests.
func (s *dnsServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/dns-query" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/dns-message" {
		http.Error(w, "want a POST of application/dns-message to /dns-query", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 65535))
	req := new(mdns.Msg)
	if err == nil {
		err = req.Unpack(body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := s.reply(req, "https").Pack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/dns-message")
	w.Write(out)
}

// newCertificates makes a CA, writes its PEM into dir, and returns the
// file and a certificate it signed for addr and serverName.
func newCertificates(t *testing.T, dir string, addr netip.Addr) (string, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netext test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: serverName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{serverName}, IPAddresses: []net.IP{addr.AsSlice()},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// waitFor polls cond until it holds, for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
