package netsettings

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/netext/netext/internal/dnsname"
	"github.com/netext/netext/internal/problem"
)

// Validate checks that s makes sense and can be applied. It reports every
// problem at once as a [*ValidationError], each with the JSON path of its
// field; nil means s is valid. Validate never changes s.
//
// Beyond the rules stated on each field, it rejects, among others: addresses
// or routes of the wrong family; host bits in route destinations; loopback,
// multicast, unspecified, network and broadcast addresses on the interface;
// repeated addresses, routes, servers and domains; a destination both
// included and excluded; malformed domain names; DNS and proxy options that
// do not fit the chosen protocol; and group (multicast) MAC addresses.
func (s *Settings) Validate() error {
	var v problems
	if s == nil {
		v.Add("", "", "settings are nil")
		return v.err()
	}
	v.remoteAddress("tunnelRemoteAddress", s.TunnelRemoteAddress)
	v.ip("ipv4", s.IPv4, IPv4)
	v.ip("ipv6", s.IPv6, IPv6)
	v.dns("dns", s.DNS)
	v.proxy("proxy", s.Proxy)

	switch {
	case s.MTU == 0: // unset
	case s.MTU < 0 || s.MTU > MaxMTU:
		v.Add("mtu", strconv.Itoa(s.MTU), fmt.Sprintf("out of range (%d to %d)", MinMTU, MaxMTU))
	case s.IPv6 != nil && s.MTU < MinMTU6:
		v.Add("mtu", strconv.Itoa(s.MTU), fmt.Sprintf("below %d, the minimum MTU for IPv6", MinMTU6))
	case s.MTU < MinMTU:
		v.Add("mtu", strconv.Itoa(s.MTU), fmt.Sprintf("below %d, the minimum MTU for IPv4", MinMTU))
	}
	if o := s.TunnelOverheadBytes; o != nil && (*o < 0 || *o > MaxMTU) {
		v.Add("tunnelOverheadBytes", strconv.Itoa(*o), fmt.Sprintf("out of range (0 to %d)", MaxMTU))
	}
	if m := s.EthernetAddress; !m.IsZero() {
		switch {
		case m.IsBroadcast():
			v.Add("ethernetAddress", m.String(), "the broadcast address cannot be an interface address")
		case m.IsMulticast():
			v.Add("ethernetAddress", m.String(), "a multicast (group) address cannot be an interface address; clear the low bit of the first octet")
		}
	}
	return v.err()
}

func (v *problems) remoteAddress(path, s string) {
	if s == "" {
		v.Add(path, "", "required (an IP address or host name)")
		return
	}
	if a, err := netip.ParseAddr(s); err == nil {
		switch {
		case a.IsUnspecified():
			v.Add(path, s, "the unspecified address is not a remote address")
		case a.IsMulticast():
			v.Add(path, s, "a multicast address is not a remote address")
		}
		return
	}
	if msg := hostNameProblem(s); msg != "" {
		v.Add(path, s, "neither an IP address nor a valid host name: "+msg)
	}
}

func (v *problems) ip(path string, ip *IPSettings, f Family) {
	if ip == nil {
		return
	}
	apath := field(path, "addresses")
	if len(ip.Addresses) == 0 {
		v.Add(apath, "", "at least one address is required (leave "+path+" out to leave "+f.name()+" unconfigured)")
	}
	seen := make(map[netip.Addr]int)
	for i, p := range ip.Addresses {
		ipath := problem.Index(apath, i)
		if !p.IsValid() {
			v.Add(ipath, "", "invalid prefix")
			continue
		}
		a := p.Addr()
		val := p.String()
		switch {
		case !v.family(ipath, val, a, f):
		case p.Bits() == 0:
			v.Add(ipath, val, "prefix length 0 makes every address on-link; use the address's own prefix length, or /"+strconv.Itoa(a.BitLen())+" with routes")
		case a.IsUnspecified():
			v.Add(ipath, val, "the unspecified address cannot be an interface address")
		case a.IsLoopback():
			v.Add(ipath, val, "a loopback address cannot be an interface address")
		case a.IsMulticast():
			v.Add(ipath, val, "a multicast address cannot be an interface address")
		case f == IPv4 && p.Bits() <= 30 && a == p.Masked().Addr():
			v.Add(ipath, val, "this is the network address of its prefix; use a host address such as "+p.Masked().Addr().Next().String())
		case f == IPv4 && p.Bits() <= 30 && a == lastAddr(p):
			v.Add(ipath, val, "this is the broadcast address of its prefix")
		}
		if j, dup := seen[a]; dup {
			v.Add(ipath, val, "same address as "+problem.Index(apath, j))
		} else {
			seen[a] = i
		}
	}

	included := v.routes(field(path, "includedRoutes"), ip.IncludedRoutes, f, true)
	excluded := v.routes(field(path, "excludedRoutes"), ip.ExcludedRoutes, f, false)
	for dst, i := range excluded {
		if j, ok := included[dst]; ok {
			v.Add(problem.Index(field(path, "excludedRoutes"), i), dst.String(), "also in "+problem.Index(field(path, "includedRoutes"), j)+"; a destination is either included or excluded")
		}
	}

	if r := ip.Router; r.IsValid() {
		rpath := field(path, "router")
		if v.gateway(rpath, r, f) {
			onLink := false
			for _, p := range ip.Addresses {
				onLink = onLink || p.IsValid() && p.Contains(r)
			}
			if !onLink && len(ip.Addresses) > 0 {
				v.Add(rpath, r.String(), "not within any of "+apath+"; the router must be on-link")
			}
		}
	}
}

// routes checks a route list and returns the index of each destination.
func (v *problems) routes(path string, routes []Route, f Family, included bool) map[netip.Prefix]int {
	seen := make(map[netip.Prefix]int, len(routes))
	for i, r := range routes {
		// Paths and values are formatted only for problems: lists can be long.
		dpath := func() string { return field(problem.Index(path, i), "destination") }
		d := r.Destination
		switch {
		case !d.IsValid():
			v.Add(dpath(), "", "required")
		case familyProblem(d.Addr(), f) != "":
			v.Add(dpath(), d.String(), familyProblem(d.Addr(), f))
		default:
			if d != d.Masked() {
				v.Add(dpath(), d.String(), "host bits are set; did you mean "+d.Masked().String()+"?")
			}
			if j, dup := seen[d.Masked()]; dup {
				v.Add(dpath(), d.String(), "same destination as "+problem.Index(path, j))
			} else {
				seen[d.Masked()] = i
			}
		}
		if r.Gateway.IsValid() {
			gpath := field(problem.Index(path, i), "gateway")
			if !included {
				v.Add(gpath, r.Gateway.String(), "excluded routes take no gateway; they use the primary physical interface's")
			} else {
				v.gateway(gpath, r.Gateway, f)
			}
		}
	}
	return seen
}

// gateway checks a next-hop address and reports whether it is usable.
func (v *problems) gateway(path string, a netip.Addr, f Family) bool {
	val := a.String()
	switch {
	case !v.family(path, val, a, f):
	case a.Zone() != "":
		v.Add(path, val, "zones are not allowed; the tunnel interface is implied")
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
		v.Add(path, val, "not a unicast address, so not a next hop")
	default:
		return true
	}
	return false
}

// family reports whether a is of family f, reporting a problem if not.
func (v *problems) family(path, val string, a netip.Addr, f Family) bool {
	if msg := familyProblem(a, f); msg != "" {
		v.Add(path, val, msg)
		return false
	}
	return true
}

// familyProblem returns why a does not belong in family f's settings, or "".
func familyProblem(a netip.Addr, f Family) string {
	switch {
	case f == IPv4 && !a.Is4():
		return "not an IPv4 address; IPv6 goes in ipv6"
	case f == IPv6 && !a.Is6():
		return "not an IPv6 address; IPv4 goes in ipv4"
	case f == IPv6 && a.Is4In6():
		return "IPv4-mapped IPv6 addresses are not allowed; put the IPv4 address in ipv4"
	}
	return ""
}

func (f Family) name() string {
	if f == IPv4 {
		return "IPv4"
	}
	return "IPv6"
}

// lastAddr returns the last address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	u := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

func (v *problems) dns(path string, d *DNS) {
	if d == nil {
		return
	}
	spath := field(path, "servers")
	if len(d.Servers) == 0 && d.Protocol != DNSOverHTTPS {
		v.Add(spath, "", "at least one server is required")
	}
	seen := make(map[netip.AddrPort]int)
	for i, s := range d.Servers {
		p := problem.Index(spath, i)
		a := s.Addr()
		val := formatServer(s)
		switch {
		case !a.IsValid():
			v.Add(p, "", "invalid address")
			continue
		case a.IsUnspecified():
			v.Add(p, val, "the unspecified address is not a server")
		case a.IsMulticast():
			v.Add(p, val, "a multicast address is not a server")
		case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			v.Add(p, val, "the broadcast address is not a server")
		case a.Zone() != "":
			v.Add(p, val, "zones are not allowed; servers are reached through the tunnel interface")
		case a.Is4In6():
			v.Add(p, val, "IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address")
		}
		if j, dup := seen[s]; dup {
			v.Add(p, val, "same server as "+problem.Index(spath, j))
		} else {
			seen[s] = i
		}
	}
	v.domains(field(path, "searchDomains"), d.SearchDomains, false)
	if d.DomainName != "" {
		if msg := domainProblem(d.DomainName); msg != "" {
			v.Add(field(path, "domainName"), d.DomainName, msg)
		}
	}
	v.domains(field(path, "matchDomains"), d.MatchDomains, true)

	protoPath := field(path, "protocol")
	nameSet, urlSet := d.ServerName != "", d.ServerURL != ""
	switch d.Protocol {
	case DNSCleartext:
		if nameSet {
			v.Add(field(path, "serverName"), d.ServerName, `only used with protocol "tls"`)
		}
		if urlSet {
			v.Add(field(path, "serverURL"), d.ServerURL, `only used with protocol "https"`)
		}
	case DNSOverTLS:
		if _, err := netip.ParseAddr(d.ServerName); nameSet && err != nil {
			if msg := hostNameProblem(d.ServerName); msg != "" {
				v.Add(field(path, "serverName"), d.ServerName, msg)
			}
		}
		if urlSet {
			v.Add(field(path, "serverURL"), d.ServerURL, `only used with protocol "https"`)
		}
	case DNSOverHTTPS:
		if nameSet {
			v.Add(field(path, "serverName"), d.ServerName, `only used with protocol "tls"; with "https" the name comes from serverURL`)
		}
		upath := field(path, "serverURL")
		if !urlSet {
			v.Add(upath, "", `required with protocol "https"`)
		} else if msg := urlProblem(d.ServerURL, "https"); msg != "" {
			v.Add(upath, urlValue(d.ServerURL), msg)
		}
	default:
		v.Add(protoPath, d.Protocol.String(), "unknown protocol (want cleartext, tls or https)")
	}
}

// domains checks a list of domain names; emptyOK allows "" (the root, that is
// every name).
func (v *problems) domains(path string, list []string, emptyOK bool) {
	seen := make(map[string]int)
	for i, name := range list {
		p := problem.Index(path, i)
		key := strings.ToLower(strings.TrimSuffix(name, "."))
		switch {
		case name == "" && emptyOK:
		case name == "":
			v.Add(p, "", "empty domain")
			continue
		default:
			if msg := domainProblem(name); msg != "" {
				v.Add(p, name, msg)
				continue
			}
		}
		if j, dup := seen[key]; dup {
			v.Add(p, name, "same domain as "+problem.Index(path, j))
		} else {
			seen[key] = i
		}
	}
}

// domainProblem returns what is wrong with the domain name s, or "" (see
// [dnsname.Problem]).
func domainProblem(s string) string { return dnsname.Problem(s) }

// hostNameProblem is domainProblem without underscores, which host names
// cannot contain.
func hostNameProblem(s string) string {
	if msg := domainProblem(s); msg != "" {
		return msg
	}
	if strings.Contains(s, "_") {
		return "invalid character '_' in a host name"
	}
	name := strings.TrimSuffix(s, ".")
	if strings.Trim(name[strings.LastIndexByte(name, '.')+1:], "0123456789") == "" {
		return "all-numeric top-level label; if this is meant as an IP address, it is not a valid one"
	}
	return ""
}

// urlValue is a bad URL as a Problem's value: empty when the URL carries
// credentials, which stay out of errors and logs.
func urlValue(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return ""
	}
	return s
}

// urlProblem returns what is wrong with u as an absolute URL with one of the
// given schemes, or "".

func urlProblem(s string, schemes ...string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL: " + strings.TrimPrefix(err.Error(), "parse "+strconv.Quote(s)+": ")
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || u.Scheme == sc
	}
	switch {
	case !ok:
		return "want a " + strings.Join(schemes, " or ") + " URL"
	case u.Host == "" || u.Hostname() == "":
		return "the URL has no host"
	case u.User != nil:
		return "credentials in the URL are not allowed"
	case u.Fragment != "":
		return "the URL has a fragment"
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil {
		if msg := hostNameProblem(u.Hostname()); msg != "" {
			return "bad host: " + msg
		}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "port out of range"
		}
	}
	return ""
}

func (v *problems) proxy(path string, p *Proxy) {
	if p == nil {
		return
	}
	urlPath := field(path, "proxyAutoConfigurationURL")
	scriptPath := field(path, "proxyAutoConfigurationJavaScript")
	hasURL, hasScript := p.ProxyAutoConfigurationURL != "", p.ProxyAutoConfigurationJavaScript != ""
	if hasURL {
		if msg := urlProblem(p.ProxyAutoConfigurationURL, "http", "https"); msg != "" {
			v.Add(urlPath, urlValue(p.ProxyAutoConfigurationURL), msg)
		}
	}
	if hasScript && strings.TrimSpace(p.ProxyAutoConfigurationJavaScript) == "" {
		v.Add(scriptPath, "", "the script is blank")
	}
	switch {
	case hasURL && hasScript:
		v.Add(scriptPath, "", "set together with proxyAutoConfigurationURL; give one of them")
	case p.AutoProxyConfigurationEnabled && !hasURL && !hasScript:
		v.Add(field(path, "autoProxyConfigurationEnabled"), "", "needs proxyAutoConfigurationURL or proxyAutoConfigurationJavaScript")
	}
	v.proxyServer(field(path, "httpServer"), p.HTTPServer)
	v.proxyServer(field(path, "httpsServer"), p.HTTPSServer)

	epath := field(path, "exceptionList")
	seen := make(map[string]int)
	for i, e := range p.ExceptionList {
		ep := problem.Index(epath, i)
		key := strings.ToLower(e)
		switch {
		case strings.TrimSpace(e) == "":
			v.Add(ep, e, "empty pattern")
		case strings.ContainsAny(e, " \t\r\n,;"):
			v.Add(ep, e, "one host, domain or pattern per entry (no spaces, commas or semicolons)")
		default:
			if j, dup := seen[key]; dup {
				v.Add(ep, e, "same pattern as "+problem.Index(epath, j))
			}
			seen[key] = i
		}
	}
	v.domains(field(path, "matchDomains"), p.MatchDomains, false)
}

func (v *problems) proxyServer(path string, s *ProxyServer) {
	if s == nil {
		return
	}
	apath := field(path, "address")
	if s.Address == "" {
		v.Add(apath, "", "required (an IP address or host name)")
	} else if a, err := netip.ParseAddr(s.Address); err == nil {
		if a.IsUnspecified() || a.IsMulticast() {
			v.Add(apath, s.Address, "not a unicast address")
		}
	} else if msg := hostNameProblem(s.Address); msg != "" {
		v.Add(apath, s.Address, "neither an IP address nor a valid host name: "+msg)
	}
	if s.Port < 1 || s.Port > 65535 {
		v.Add(field(path, "port"), strconv.Itoa(s.Port), "out of range (1 to 65535)")
	}
	if s.AuthenticationRequired && s.Username == "" {
		v.Add(field(path, "username"), "", "required when authenticationRequired is true")
	}
}
