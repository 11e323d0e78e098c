package netsettings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/netext/netext/internal/problem"
)

// Decode parses a JSON settings document (see docs/settings.md). It is
// strict: unknown and duplicate fields, values of the wrong JSON type and
// unparseable addresses are errors. Decode reports every such problem at
// once, as a [*ValidationError] whose problems carry the path of each field.
// It returns non-nil settings exactly when the error is nil.
//
// Decode checks syntax only; call [Settings.Validate] to check meaning.
// A JSON null for a field is the same as leaving the field out.
//
// For IPv4, "addresses" may also be given Apple's way: bare addresses plus a
// parallel "subnetMasks" list; for IPv6, bare addresses plus
// "networkPrefixLengths". Encode always writes prefixes (10.8.0.2/24).
func Decode(data []byte) (*Settings, error) {
	var d decoder
	if !json.Valid(data) {
		d.Add("", "", syntaxMessage(data))
		return nil, d.err()
	}
	s := d.settings("", data)
	if err := d.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// syntaxMessage describes why data is not JSON, with a line and column.
func syntaxMessage(data []byte) string {
	var v any
	err := json.Unmarshal(data, &v)
	var serr *json.SyntaxError
	if !errors.As(err, &serr) {
		if err == nil {
			return "invalid JSON"
		}
		return "invalid JSON: " + err.Error()
	}
	if serr.Offset >= int64(len(data)) {
		return "invalid JSON: " + serr.Error() // the end: no position to give
	}
	// Offset counts the offending byte.
	before := data[:serr.Offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n') - 1
	return fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, serr)
}

type decoder struct {
	problems
}

// A member decodes the value v of one object member at path. It is not
// called for null values.
type member func(path string, v json.RawMessage)

func (d *decoder) settings(path string, v json.RawMessage) *Settings {
	s := new(Settings)
	d.object(path, v, map[string]member{
		"tunnelRemoteAddress": func(p string, v json.RawMessage) { s.TunnelRemoteAddress, _ = d.string(p, v) },
		"ipv4":                func(p string, v json.RawMessage) { s.IPv4 = d.ip(p, v, IPv4) },
		"ipv6":                func(p string, v json.RawMessage) { s.IPv6 = d.ip(p, v, IPv6) },
		"dns":                 func(p string, v json.RawMessage) { s.DNS = d.dns(p, v) },
		"proxy":               func(p string, v json.RawMessage) { s.Proxy = d.proxy(p, v) },
		"mtu": func(p string, v json.RawMessage) {
			if n, ok := d.int(p, v); ok && n == 0 {
				d.Add(p, string(v), "0 is not an MTU (leave mtu out to leave the MTU unset)")
			} else {
				s.MTU = n
			}
		},
		"tunnelOverheadBytes": func(p string, v json.RawMessage) {
			if n, ok := d.int(p, v); ok {
				s.TunnelOverheadBytes = &n
			}
		},
		"ethernetAddress": func(p string, v json.RawMessage) {
			if str, ok := d.string(p, v); ok {
				m, err := ParseMAC(str)
				if err != nil {
					d.Add(p, str, "malformed MAC address (want six colon-separated hex pairs such as 02:00:5e:10:00:01)")
				} else if m.IsZero() {
					d.Add(p, str, "the zero MAC address is not an address (leave ethernetAddress out to leave it unset)")
				}
				s.EthernetAddress = m
			}
		},
	})
	return s
}

func (d *decoder) ip(path string, v json.RawMessage, f Family) *IPSettings {
	ip := new(IPSettings)
	var addrs []string // raw address text, combined with masks below
	var masks []int    // prefix lengths from subnetMasks or networkPrefixLengths
	masksName := "subnetMasks"
	if f == IPv6 {
		masksName = "networkPrefixLengths"
	}
	ok := d.object(path, v, map[string]member{
		"addresses": func(p string, v json.RawMessage) {
			addrs = []string{}
			if !d.array(p, v, func(p string, v json.RawMessage) {
				s, ok := d.string(p, v)
				if !ok {
					s = badElement // keep the positions for subnetMasks
				}
				addrs = append(addrs, s)
			}) {
				addrs = nil
			}
		},
		masksName: func(p string, v json.RawMessage) {
			masks = []int{}
			d.array(p, v, func(p string, v json.RawMessage) {
				masks = append(masks, d.maskBits(p, v, f))
			})
		},
		"includedRoutes": func(p string, v json.RawMessage) { ip.IncludedRoutes = d.routes(p, v) },
		"excludedRoutes": func(p string, v json.RawMessage) { ip.ExcludedRoutes = d.routes(p, v) },
		"router":         func(p string, v json.RawMessage) { ip.Router = d.addr(p, v) },
	})
	if !ok {
		return nil
	}
	ip.Addresses = d.addresses(path, addrs, masks, masksName, f)
	return ip
}

// badElement marks a list element that was not a string (and was reported).
const badElement = "\x00bad"

// addresses turns address texts into prefixes, taking prefix lengths from
// masks when the masks list was given (masks != nil).
func (d *decoder) addresses(path string, addrs []string, masks []int, masksName string, f Family) []netip.Prefix {
	apath := field(path, "addresses")
	if masks != nil && len(masks) != len(addrs) {
		d.Add(field(path, masksName), "", fmt.Sprintf("has %d entries but addresses has %d; they pair up by position", len(masks), len(addrs)))
		return nil
	}
	if addrs == nil {
		return nil
	}
	prefixes := make([]netip.Prefix, 0, len(addrs))
	example := "10.8.0.2/24"
	if f == IPv6 {
		example = "fd00::2/64"
	}
	for i, s := range addrs {
		p := problem.Index(apath, i)
		if s == badElement {
			continue
		}
		if masks != nil {
			a, err := netip.ParseAddr(s)
			if err != nil {
				d.Add(p, s, "not an IP address: "+netipMessage(err)+" (with "+masksName+", give addresses without a prefix length)")
				continue
			}
			if masks[i] < 0 { // already reported
				continue
			}
			if a.Zone() != "" {
				d.Add(p, s, "zones are not allowed in interface addresses")
				continue
			}
			if masks[i] > a.BitLen() {
				d.Add(p, s, fmt.Sprintf("prefix length %d from %s is too long for this address", masks[i], problem.Index(field(path, masksName), i)))
				continue
			}
			prefixes = append(prefixes, netip.PrefixFrom(a, masks[i]))
			continue
		}
		if !strings.Contains(s, "/") {
			d.Add(p, s, "missing prefix length (write it as "+example+", or give "+masksName+")")
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			d.Add(p, s, netipMessage(err))
			continue
		}
		prefixes = append(prefixes, pfx)
	}
	return prefixes
}

// maskBits decodes one subnet mask (IPv4) or prefix length (IPv6) and
// returns its number of bits, or -1 after reporting a problem.
func (d *decoder) maskBits(path string, v json.RawMessage, f Family) int {
	if f == IPv6 {
		n, ok := d.int(path, v)
		if !ok {
			return -1
		}
		if n < 0 || n > 128 {
			d.Add(path, string(v), "prefix length out of range (0 to 128)")
			return -1
		}
		return n
	}
	s, ok := d.string(path, v)
	if !ok {
		return -1
	}
	m, err := netip.ParseAddr(s)
	if err != nil || !m.Is4() {
		d.Add(path, s, "not a dotted-decimal subnet mask such as 255.255.255.0")
		return -1
	}
	b := m.As4()
	u := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := bits.LeadingZeros32(^u)
	if u != ^uint32(0)<<(32-ones) {
		d.Add(path, s, "subnet mask is not contiguous (its one bits must come first)")
		return -1
	}
	return ones
}

// routeFields are the members of a route object.
var routeFields = map[string]member{"destination": nil, "gateway": nil}

func (d *decoder) routes(path string, v json.RawMessage) []Route {
	routes := []Route{}
	ok := d.array(path, v, func(p string, v json.RawMessage) {
		var r Route
		var hasDest bool
		if !d.members(p, v, routeFields, func(name, p string, v json.RawMessage) {
			switch name {
			case "destination":
				hasDest = true
				r.Destination = d.destination(p, v)
			case "gateway":
				r.Gateway = d.addr(p, v)
			}
		}) {
			return
		}
		if !hasDest {
			d.Add(field(p, "destination"), "", "required")
		}
		routes = append(routes, r)
	})
	if !ok {
		return nil
	}
	return routes
}

func (d *decoder) destination(path string, v json.RawMessage) netip.Prefix {
	s, ok := d.string(path, v)
	if !ok {
		return netip.Prefix{}
	}
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err == nil:
		return pfx
	case !strings.Contains(s, "/"):
		host := "/32"
		if strings.Contains(s, ":") {
			host = "/128"
		}
		d.Add(path, s, "missing prefix length (write a host route as "+s+host+")")
	default:
		d.Add(path, s, netipMessage(err))
	}
	return netip.Prefix{}
}

func (d *decoder) dns(path string, v json.RawMessage) *DNS {
	dns := new(DNS)
	ok := d.object(path, v, map[string]member{
		"servers": func(p string, v json.RawMessage) {
			dns.Servers = []netip.AddrPort{}
			d.array(p, v, func(p string, v json.RawMessage) {
				s, ok := d.string(p, v)
				if !ok {
					return
				}
				if a, err := netip.ParseAddr(s); err == nil {
					dns.Servers = append(dns.Servers, netip.AddrPortFrom(a, 0))
					return
				}
				ap, err := netip.ParseAddrPort(s)
				switch {
				case err != nil:
					d.Add(p, s, "not an IP address, or an IP address and port (10.8.0.1, 10.8.0.1:5353, fd00::1, [fd00::1]:5353)")
				case ap.Port() == 0:
					d.Add(p, s, "port 0 is not a port (leave the port out to use the standard one)")
				default:
					dns.Servers = append(dns.Servers, ap)
				}
			})
		},
		"searchDomains":        func(p string, v json.RawMessage) { dns.SearchDomains = d.strings(p, v) },
		"domainName":           func(p string, v json.RawMessage) { dns.DomainName, _ = d.string(p, v) },
		"matchDomains":         func(p string, v json.RawMessage) { dns.MatchDomains = d.strings(p, v) },
		"matchDomainsNoSearch": func(p string, v json.RawMessage) { dns.MatchDomainsNoSearch = d.bool(p, v) },
		"allowFailover":        func(p string, v json.RawMessage) { dns.AllowFailover = d.bool(p, v) },
		"protocol": func(p string, v json.RawMessage) {
			if s, ok := d.string(p, v); ok {
				if err := dns.Protocol.UnmarshalText([]byte(s)); err != nil {
					d.Add(p, s, "unknown protocol (want cleartext, tls or https)")
				}
			}
		},
		"serverName": func(p string, v json.RawMessage) { dns.ServerName, _ = d.string(p, v) },
		"serverURL":  func(p string, v json.RawMessage) { dns.ServerURL, _ = d.string(p, v) },
	})
	if !ok {
		return nil
	}
	return dns
}

func (d *decoder) proxy(path string, v json.RawMessage) *Proxy {
	px := new(Proxy)
	ok := d.object(path, v, map[string]member{
		"autoProxyConfigurationEnabled": func(p string, v json.RawMessage) { px.AutoProxyConfigurationEnabled = d.bool(p, v) },
		"proxyAutoConfigurationURL": func(p string, v json.RawMessage) {
			px.ProxyAutoConfigurationURL, _ = d.string(p, v)
		},
		"proxyAutoConfigurationJavaScript": func(p string, v json.RawMessage) {
			px.ProxyAutoConfigurationJavaScript, _ = d.string(p, v)
		},
		"httpServer":             func(p string, v json.RawMessage) { px.HTTPServer = d.proxyServer(p, v) },
		"httpsServer":            func(p string, v json.RawMessage) { px.HTTPSServer = d.proxyServer(p, v) },
		"excludeSimpleHostnames": func(p string, v json.RawMessage) { px.ExcludeSimpleHostnames = d.bool(p, v) },
		"exceptionList":          func(p string, v json.RawMessage) { px.ExceptionList = d.strings(p, v) },
		"matchDomains":           func(p string, v json.RawMessage) { px.MatchDomains = d.strings(p, v) },
	})
	if !ok {
		return nil
	}
	return px
}

func (d *decoder) proxyServer(path string, v json.RawMessage) *ProxyServer {
	s := new(ProxyServer)
	ok := d.object(path, v, map[string]member{
		"address":                func(p string, v json.RawMessage) { s.Address, _ = d.string(p, v) },
		"port":                   func(p string, v json.RawMessage) { s.Port, _ = d.int(p, v) },
		"authenticationRequired": func(p string, v json.RawMessage) { s.AuthenticationRequired = d.bool(p, v) },
		"username":               func(p string, v json.RawMessage) { s.Username, _ = d.string(p, v) },
		// d.string never echoes the value, which may be a secret.
		"password": func(p string, v json.RawMessage) { s.Password, _ = d.string(p, v) },
	})
	if !ok {
		return nil
	}
	return s
}

// object decodes the JSON object v by calling fields[name] for each member,
// in document order. It reports unknown and repeated members, and a v that is
// not an object (returning false).
func (d *decoder) object(path string, v json.RawMessage, fields map[string]member) bool {
	return d.members(path, v, fields, func(name, p string, v json.RawMessage) { fields[name](p, v) })
}

// members is object with a single function for all known members, for hot
// paths that cannot afford a map of closures per object. known holds the
// member names (only its keys are used).
func (d *decoder) members(path string, v json.RawMessage, known map[string]member, fn func(name, path string, v json.RawMessage)) bool {
	if k := kind(v); k != "object" {
		d.Add(path, "", "want an object, got "+k)
		return false
	}
	var seenBuf [16]string // objects are small: a slice beats a map
	seen := seenBuf[:0]
	for key, val := range scanObject(v) {
		var name string
		if bytes.IndexByte(key, '\\') >= 0 {
			json.Unmarshal(key, &name) //nolint:errcheck // valid JSON string
		} else {
			name = string(key[1 : len(key)-1])
		}
		_, isKnown := known[name]
		switch p := field(path, name); {
		case slices.Contains(seen, name):
			d.Add(p, "", "repeated field")
		case !isKnown:
			d.Add(p, "", unknownMessage(name, known))
		case kind(val) != "null":
			fn(name, p, val)
		}
		seen = append(seen, name)
	}
	return true
}

// appleNames maps names a provider ported from Apple's API may use to ours.
var appleNames = map[string]string{
	"ipv4Settings":          "ipv4",
	"ipv6Settings":          "ipv6",
	"dnsSettings":           "dns",
	"proxySettings":         "proxy",
	"destinationAddress":    "destination",
	"gatewayAddress":        "gateway",
	"dnsProtocol":           "protocol",
	"networkPrefixLength":   "destination",
	"destinationSubnetMask": "destination",
	"subnetMasks":           "addresses",
	"networkPrefixLengths":  "addresses",
	"httpEnabled":           "httpServer",
	"httpsEnabled":          "httpsServer",
}

func unknownMessage(name string, fields map[string]member) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return fmt.Sprintf("unknown field (did you mean %q?)", n)
		}
	}
	if n, ok := appleNames[name]; ok {
		if _, known := fields[n]; known {
			return fmt.Sprintf("unknown field (see %q)", n)
		}
	}
	return "unknown field (want one of " + strings.Join(names, ", ") + ")"
}

// array calls elem for each element of the JSON array v, or reports that v
// is not an array and returns false.
func (d *decoder) array(path string, v json.RawMessage, elem func(path string, v json.RawMessage)) bool {
	if k := kind(v); k != "array" {
		d.Add(path, "", "want an array, got "+k)
		return false
	}
	i := 0
	for e := range scanArray(v) {
		elem(problem.Index(path, i), e)
		i++
	}
	return true
}

// strings decodes an array of strings; [] gives an empty, non-nil slice.
func (d *decoder) strings(path string, v json.RawMessage) []string {
	list := []string{}
	if !d.array(path, v, func(p string, v json.RawMessage) {
		if s, ok := d.string(p, v); ok {
			list = append(list, s)
		}
	}) {
		return nil
	}
	return list
}

func (d *decoder) string(path string, v json.RawMessage) (string, bool) {
	var s string
	if k := kind(v); k != "string" {
		d.Add(path, "", "want a string, got "+k)
		return "", false
	}
	if v = bytes.TrimSpace(v); bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return string(v[1 : len(v)-1]), true // nothing to unescape
	}
	if err := json.Unmarshal(v, &s); err != nil {
		d.Add(path, "", "invalid string: "+err.Error())
		return "", false
	}
	return s, true
}

func (d *decoder) bool(path string, v json.RawMessage) bool {
	if k := kind(v); k != "boolean" {
		d.Add(path, "", "want true or false, got "+k)
		return false
	}
	return bytes.TrimSpace(v)[0] == 't'
}

func (d *decoder) int(path string, v json.RawMessage) (int, bool) {
	if k := kind(v); k != "number" {
		d.Add(path, "", "want an integer, got "+k)
		return 0, false
	}
	text := string(bytes.TrimSpace(v))
	n, err := strconv.ParseInt(text, 10, 0)
	switch {
	case errors.Is(err, strconv.ErrRange):
		d.Add(path, text, "out of range")
		return 0, false
	case err != nil:
		d.Add(path, text, "want an integer")
		return 0, false
	}
	return int(n), true
}

func (d *decoder) addr(path string, v json.RawMessage) netip.Addr {
	s, ok := d.string(path, v)
	if !ok {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.Add(path, s, "not an IP address: "+netipMessage(err))
	}
	return a
}

// kind returns the JSON type of the valid JSON value v.
func kind(v json.RawMessage) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// netipMessage returns the reason in a net/netip parse error, without the
// function names and the quoted input the error starts with.
func netipMessage(err error) string {
	msg := err.Error()
	for {
		open := strings.Index(msg, "(\"")
		if open < 0 || strings.ContainsAny(msg[:open], " :") {
			return msg
		}
		end := strings.Index(msg, "\"): ")
		if end < 0 {
			return msg
		}
		msg = msg[end+len("\"): "):]
	}
}
