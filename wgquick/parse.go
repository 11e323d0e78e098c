package wgquick

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/netsettings"
)

// Problem is one thing wrong with a file.
type Problem struct {
	Line   int    // 1-based; 0 for the file as a whole
	Key    string // the key as written, or "" for the line or the file
	Value  string // the offending value, or "" (always for secret keys)
	Reason string
}

// ParseError lists every problem of a file, in line order.
type ParseError struct {
	File     string // the name given to Parse
	Problems []Problem
}

// Error returns one line per problem: "FILE:LINE: Key: value: reason".
func (e *ParseError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key + ": ")
		}
		if p.Value != "" {
			b.WriteString(p.Value + ": ")
		}
		b.WriteString(p.Reason)
	}
	return b.String()
}

// Warning is a line that Parse ignored because it cannot apply to netext.
type Warning struct {
	Line    int
	Key     string
	Message string // such as "PostUp is not supported: netext does not run commands; ignored"
}

// String returns "line 7: PostUp is not supported: ...".
func (w Warning) String() string { return fmt.Sprintf("line %d: %s", w.Line, w.Message) }

// Limits of values, as wg(8) and the kernel have them.
const (
	maxPort      = 65535
	maxKeepalive = 65535
	maxLineCount = 1 << 16
)

// parser holds the state of one Parse.
type parser struct {
	problems []Problem
	warnings []Warning

	cfg       Config
	section   string // "interface", "peer" or "" before the first section
	iface     int    // line of [Interface], 0 if none yet
	peer      *Peer  // the peer being read
	peerLine  int
	seen      map[string]int // key (lower case) to the line that set it, per section
	privLine  int            // line of a valid PrivateKey
	privSeen  bool           // a PrivateKey line was read, valid or not
	addrBad   bool           // an Address line had a bad value
	peerLines []int          // line of each peer's section header
	allowed   []lineAllowed
}

// lineAllowed is an allowed IP and its line, for the checks at the end.
type lineAllowed struct {
	line   int
	prefix netip.Prefix
}

func (p *parser) problem(line int, key, value, reason string) {
	p.problems = append(p.problems, Problem{Line: line, Key: key, Value: value, Reason: reason})
}

// Parse reads a wg-quick file. name is only used in errors (usually the
// file's name). It returns the configuration and the warnings about lines
// it ignored, or a *ParseError listing every problem of the file.
func Parse(name string, data []byte) (*Config, []Warning, error) {
	p := &parser{}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark
	lines := strings.Split(string(data), "\n")
	if len(lines) > maxLineCount {
		return nil, nil, &ParseError{File: name, Problems: []Problem{{Reason: fmt.Sprintf("more than %d lines", maxLineCount)}}}
	}
	for i, raw := range lines {
		p.line(i+1, raw)
	}
	p.endPeer()
	p.finish()
	if len(p.problems) > 0 {
		return nil, nil, &ParseError{File: name, Problems: p.problems}
	}
	return &p.cfg, p.warnings, nil
}

func (p *parser) line(n int, raw string) {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	line := strings.TrimSpace(raw)
	if line == "" {
		return
	}
	if strings.HasPrefix(line, "[") {
		if !strings.HasSuffix(line, "]") {
			p.problem(n, "", line, "a section header needs a closing ]")
			return
		}
		p.header(n, strings.TrimSpace(line[1:len(line)-1]))
		return
	}
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		p.problem(n, "", line, "want Key = value or a [Section]")
		return
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if key == "" {
		p.problem(n, "", line, "the key is missing")
		return
	}
	switch p.section {
	case "":
		p.problem(n, key, "", "outside any section: put it under [Interface] or [Peer]")
	case "interface":
		p.interfaceKey(n, key, value)
	case "peer":
		p.peerKey(n, key, value)
	}
}

func (p *parser) header(n int, name string) {
	p.endPeer()
	p.seen = map[string]int{}
	switch strings.ToLower(name) {
	case "interface":
		if p.iface != 0 {
			p.problem(n, "", "[Interface]", fmt.Sprintf("a second [Interface] section (the first is on line %d)", p.iface))
		}
		p.iface = n
		p.section = "interface"
	case "peer":
		p.section = "peer"
		p.peer, p.peerLine = &Peer{}, n
	default:
		p.section = "unknown"
		p.problem(n, "", "["+name+"]", "unknown section: want [Interface] or [Peer]")
	}
}

// once records key on line n and reports whether it is its first
// appearance in the section.
func (p *parser) once(n int, key string) bool {
	k := strings.ToLower(key)
	if first, ok := p.seen[k]; ok {
		p.problem(n, key, "", fmt.Sprintf("set twice in one section (first on line %d)", first))
		return false
	}
	p.seen[k] = n
	return true
}

func (p *parser) interfaceKey(n int, key, value string) {
	c := &p.cfg.Interface
	switch strings.ToLower(key) {
	case "privatekey":
		p.privSeen = true
		if !p.once(n, key) {
			return
		}
		k, reason := parseKey(value)
		if reason != "" {
			p.problem(n, key, "", reason+" (the value is not shown)")
			return
		}
		if k == (wgtypes.Key{}) {
			p.problem(n, key, "", "the zero key is not a private key")
			return
		}
		c.PrivateKey, p.privLine = SecretKey(k), n
	case "address":
		for _, v := range splitList(value) {
			a, err := parsePrefix(v, false)
			if err != "" {
				p.addrBad = true
				p.problem(n, key, v, err)
				continue
			}
			c.Addresses = append(c.Addresses, a)
		}
	case "dns":
		for _, v := range splitList(value) {
			if a, err := netip.ParseAddr(v); err == nil {
				if a.Zone() != "" {
					p.problem(n, key, v, "zones are not supported")
					continue
				}
				c.DNS = append(c.DNS, a.Unmap())
				continue
			}
			if reason := domainProblem(v); reason != "" {
				p.problem(n, key, v, "neither an IP address nor a search domain: "+reason)
				continue
			}
			c.SearchDomains = append(c.SearchDomains, strings.TrimSuffix(v, "."))
		}
	case "mtu":
		if !p.once(n, key) {
			return
		}
		m, err := strconv.Atoi(value)
		if err != nil || m < netsettings.MinMTU || m > netsettings.MaxMTU {
			p.problem(n, key, value, fmt.Sprintf("want a number from %d to %d", netsettings.MinMTU, netsettings.MaxMTU))
			return
		}
		c.MTU = m
	case "listenport":
		if !p.once(n, key) {
			return
		}
		port, err := strconv.Atoi(value)
		if err != nil || port < 0 || port > maxPort {
			p.problem(n, key, value, "want a port number from 0 to 65535")
			return
		}
		c.ListenPort = port
	case "preup", "postup", "predown", "postdown":
		p.warnings = append(p.warnings, Warning{n, key, key + " is not supported: netext does not run commands; ignored"})
	case "saveconfig":
		switch strings.ToLower(value) {
		case "true":
			p.warnings = append(p.warnings, Warning{n, key, key + " is not supported: netext keeps the configuration itself and never writes the file; ignored"})
		case "false":
		default:
			p.problem(n, key, value, "want true or false")
		}
	case "fwmark":
		switch v := strings.ToLower(value); v {
		case "off", "0":
		default:
			if _, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), base(v), 32); err != nil {
				p.problem(n, key, value, "want a 32-bit number or off")
				return
			}
			p.warnings = append(p.warnings, Warning{n, key, key + " is not supported: netext marks the tunnel's own sockets itself; ignored"})
		}
	case "table":
		switch strings.ToLower(value) {
		case "auto":
		case "off":
			p.problem(n, key, value, "netext always routes the peers' AllowedIPs into the tunnel; remove the line, or narrow AllowedIPs to what should be routed")
		default:
			p.problem(n, key, value, "netext routes the peers' AllowedIPs in its own table, with its own rules; routes in another table would need the file's own rules, which netext does not run; remove the line")
		}
	case "publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive":
		p.problem(n, key, "", "belongs in a [Peer] section")
	default:
		p.problem(n, key, "", "unknown key in [Interface]")
	}
}

func base(v string) int {
	if strings.HasPrefix(v, "0x") {
		return 16
	}
	return 10
}

func (p *parser) peerKey(n int, key, value string) {
	peer := p.peer
	if peer == nil { // an unknown section
		return
	}
	switch strings.ToLower(key) {
	case "publickey":
		if !p.once(n, key) {
			return
		}
		k, reason := parseKey(value)
		if reason != "" {
			p.problem(n, key, value, reason)
			return
		}
		if k == (wgtypes.Key{}) {
			p.problem(n, key, value, "the zero key is not a public key")
			return
		}
		peer.PublicKey = k
	case "presharedkey":
		if !p.once(n, key) {
			return
		}
		k, reason := parseKey(value)
		if reason != "" {
			p.problem(n, key, "", reason+" (the value is not shown)")
			return
		}
		peer.PresharedKey = SecretKey(k)
	case "allowedips":
		for _, v := range splitList(value) {
			a, err := parsePrefix(v, true)
			if err != "" {
				p.problem(n, key, v, err)
				continue
			}
			peer.AllowedIPs = append(peer.AllowedIPs, a)
			p.allowed = append(p.allowed, lineAllowed{n, a})
		}
	case "endpoint":
		if !p.once(n, key) {
			return
		}
		if reason := EndpointProblem(value); reason != "" {
			p.problem(n, key, value, reason)
			return
		}
		peer.Endpoint = value
	case "persistentkeepalive":
		if !p.once(n, key) {
			return
		}
		if strings.EqualFold(value, "off") {
			peer.PersistentKeepalive = 0
			return
		}
		s, err := strconv.Atoi(value)
		if err != nil || s < 0 || s > maxKeepalive {
			p.problem(n, key, value, "want seconds from 0 to 65535, or off")
			return
		}
		peer.PersistentKeepalive = s
	case "privatekey", "address", "dns", "mtu", "listenport", "table", "fwmark", "saveconfig",
		"preup", "postup", "predown", "postdown":
		p.problem(n, key, "", "belongs in the [Interface] section")
	default:
		p.problem(n, key, "", "unknown key in [Peer]")
	}
}

// endPeer finishes the peer being read, if any.
func (p *parser) endPeer() {
	if p.peer == nil {
		return
	}
	if p.peer.PublicKey == (wgtypes.Key{}) {
		if _, ok := p.seen["publickey"]; !ok {
			p.problem(p.peerLine, "", "[Peer]", "PublicKey is missing")
		}
	}
	p.cfg.Peers = append(p.cfg.Peers, *p.peer)
	p.peerLines = append(p.peerLines, p.peerLine)
	p.peer = nil
}

// finish checks the file as a whole.
func (p *parser) finish() {
	c := &p.cfg
	if p.iface == 0 {
		p.problem(0, "", "", "no [Interface] section")
	} else if !p.privSeen {
		p.problem(p.iface, "", "[Interface]", "PrivateKey is missing")
	}
	if len(c.Peers) == 0 {
		p.problem(0, "", "", "no [Peer] section: netext needs at least one peer")
	}
	own := c.Interface.PublicKey()
	keys := map[wgtypes.Key]int{}
	for i, peer := range c.Peers {
		if peer.PublicKey == (wgtypes.Key{}) {
			continue
		}
		line := p.peerLines[i]
		if first, ok := keys[peer.PublicKey]; ok {
			p.problem(line, "PublicKey", peer.PublicKey.String(), fmt.Sprintf("the peer of line %d has the same key", first))
		}
		keys[peer.PublicKey] = line
		if p.privLine != 0 && peer.PublicKey == own {
			p.problem(line, "PublicKey", peer.PublicKey.String(), "this is the interface's own public key")
		}
	}
	if p.iface != 0 && len(c.Interface.Addresses) == 0 && !p.addrBad {
		p.problem(p.iface, "", "[Interface]", "Address is missing: netext needs at least one tunnel address")
	}
	var has4, has6 bool
	for _, a := range c.Interface.Addresses {
		has4, has6 = has4 || a.Addr().Is4(), has6 || a.Addr().Is6()
	}
	for _, a := range p.allowed {
		if len(c.Interface.Addresses) == 0 || (a.prefix.Addr().Is4() && has4) || (a.prefix.Addr().Is6() && has6) {
			continue
		}
		f := "IPv4"
		if a.prefix.Addr().Is6() {
			f = "IPv6"
		}
		p.warnings = append(p.warnings, Warning{a.line, "AllowedIPs", fmt.Sprintf(
			"AllowedIPs %v: there is no %s Address in [Interface], and netext routes %s into the tunnel only with one: this traffic stays outside the tunnel", a.prefix, f, f)})
	}
	for i := 1; i < len(p.warnings); i++ {
		for j := i; j > 0 && p.warnings[j].Line < p.warnings[j-1].Line; j-- {
			p.warnings[j], p.warnings[j-1] = p.warnings[j-1], p.warnings[j]
		}
	}
	if len(c.Interface.SearchDomains) > 0 && len(c.Interface.DNS) == 0 {
		p.problem(p.iface, "DNS", strings.Join(c.Interface.SearchDomains, ", "), "search domains need at least one DNS server address")
	}
	if c.MTUProblem() != "" {
		p.problem(p.iface, "MTU", strconv.Itoa(c.Interface.MTU), c.MTUProblem())
	}
	sortProblems(p.problems)
}

// MTUProblem reports an MTU that the tunnel's IPv6 addresses do not allow,
// or "".
func (c *Config) MTUProblem() string {
	if c.Interface.MTU == 0 || c.Interface.MTU >= netsettings.MinMTU6 {
		return ""
	}
	for _, a := range c.Interface.Addresses {
		if a.Addr().Is6() {
			return fmt.Sprintf("IPv6 needs an MTU of at least %d", netsettings.MinMTU6)
		}
	}
	return ""
}

func sortProblems(ps []Problem) {
	// Insertion sort: stable, and files have few problems.
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Line < ps[j-1].Line; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseKey parses a base64 key. The reason never contains the value.
func parseKey(v string) (wgtypes.Key, string) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return wgtypes.Key{}, "not a base64 key"
	}
	if len(b) != wgtypes.KeyLen {
		return wgtypes.Key{}, fmt.Sprintf("a key has %d bytes (44 base64 characters), not %d", wgtypes.KeyLen, len(b))
	}
	return wgtypes.Key(b), ""
}

// parsePrefix parses "10.0.0.2/24" or a bare address (a single host).
// Allowed IPs are masked; interface addresses keep their host bits.
func parsePrefix(v string, mask bool) (netip.Prefix, string) {
	var pr netip.Prefix
	if strings.Contains(v, "/") {
		var err error
		pr, err = netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, "want an address with an optional prefix length, such as 10.0.0.2/24 or fd00::2/64"
		}
	} else {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, "want an address with an optional prefix length, such as 10.0.0.2/24 or fd00::2/64"
		}
		pr = netip.PrefixFrom(a, a.BitLen())
	}
	if pr.Addr().Is4In6() {
		pr = netip.PrefixFrom(pr.Addr().Unmap(), max(pr.Bits()-96, 0))
	}
	if mask {
		pr = pr.Masked()
	}
	return pr, ""
}

// EndpointProblem checks a peer endpoint, "host:port" with IPv6 addresses
// in brackets, and returns what is wrong with it, or "".
func EndpointProblem(v string) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "want host:port, with an IPv6 address in brackets ([fd00::1]:51820)"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > maxPort {
		return "the port must be a number from 1 to 65535"
	}
	if host == "" {
		return "the host is missing"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "zones are not supported"
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return "not an address a peer can have"
		}
		return ""
	}
	if strings.HasPrefix(v, "[") {
		return "only IPv6 addresses go in brackets"
	}
	if r := hostProblem(host); r != "" {
		return "neither an IP address nor a host name: " + r
	}
	return ""
}

// hostProblem checks a DNS host name (letters, digits, hyphens).
func hostProblem(h string) string {
	return nameProblem(strings.TrimSuffix(h, "."), false)
}

// domainProblem checks a search domain, which may also hold underscores.
func domainProblem(d string) string {
	return nameProblem(strings.TrimSuffix(d, "."), true)
}

func nameProblem(s string, underscore bool) string {
	if s == "" {
		return "empty"
	}
	if len(s) > 253 {
		return "longer than 253 characters"
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return "an empty label"
		}
		if len(label) > 63 {
			return "a label longer than 63 characters"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "a label starts or ends with a hyphen"
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			case r == '_' && underscore:
			default:
				return fmt.Sprintf("the character %q is not allowed", r)
			}
		}
	}
	return ""
}
