package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/netext/netext/internal/problem"
	"github.com/netext/netext/internal/providerid"
)

// Limits on configuration fields.
const (
	MaxNameLen        = 64
	MaxDescriptionLen = 1024
	maxShortText      = 1024      // serverAddress, username, paths
	maxProviderConfig = 256 << 10 // bytes of providerConfiguration
	maxListLen        = 1024      // elements of any list
)

// CheckName reports whether name can name a configuration: 1 to 64
// characters from [A-Za-z0-9._-], not starting with '.' or '-'. The name is
// also the configuration's file name, so nothing else is allowed.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("configuration name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("configuration name is %d characters long; at most %d are allowed", len(name), MaxNameLen)
	case name[0] == '.' || name[0] == '-':
		return fmt.Errorf("configuration name %q starts with %q", name, name[0])
	}
	for _, c := range []byte(name) {
		if !isNameChar(c) {
			return fmt.Errorf("configuration name %q contains %q; use only letters, digits, '.', '_' and '-'", name, rune(c))
		}
	}
	return nil
}

func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// Validate checks c and returns nil or a [*ValidationError] listing every
// problem, each with the JSON path of its field. It checks the fields a
// caller sets; Generation, HasSecret and the timestamps belong to the store
// and are not checked.
func (c *Configuration) Validate() error {
	var ps problems
	if err := CheckName(c.Name); err != nil {
		ps.Add("name", c.Name, nameMessage(c.Name))
	}
	ps.text("description", c.Description, MaxDescriptionLen)
	if c.ProviderID == "" {
		ps.Add("providerID", "", "required: the id of an installed provider, such as org.example.wireguard")
	} else if msg := providerid.Problem(c.ProviderID); msg != "" {
		ps.Add("providerID", c.ProviderID, msg)
	}
	if ps.text("serverAddress", c.ServerAddress, maxShortText) && strings.ContainsFunc(c.ServerAddress, unicode.IsSpace) {
		ps.Add("serverAddress", c.ServerAddress, "contains white space")
	}
	ps.text("username", c.Username, maxShortText)
	ps.providerConfiguration(c.ProviderConfiguration)
	ps.onDemand("onDemand", &c.OnDemand)

	switch c.RoutingMethod {
	case "", RoutingDestinationIP:
		if len(c.AppRules) > 0 {
			ps.Add("appRules", "", `app rules apply only with routingMethod "sourceApplication"`)
		}
	case RoutingSourceApplication:
		if len(c.AppRules) == 0 {
			ps.Add("appRules", "", `routingMethod "sourceApplication" needs at least one app rule`)
		}
	default:
		ps.Add("routingMethod", string(c.RoutingMethod), `must be "destinationIP" or "sourceApplication"`)
	}
	if ps.listLen("appRules", len(c.AppRules)) {
		for i := range c.AppRules {
			ps.appRule(problem.Index("appRules", i), &c.AppRules[i])
		}
	}
	return ps.err()
}

func nameMessage(name string) string {
	switch {
	case name == "":
		return "required"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("too long (%d characters; at most %d)", len(name), MaxNameLen)
	case name[0] == '.' || name[0] == '-':
		return fmt.Sprintf("must not start with %q", name[0])
	}
	return "use only letters, digits, '.', '_' and '-'"
}

// domainMessage returns what is wrong with a DNS domain name, or "".
func domainMessage(d string) string {
	if d == "" {
		return "empty domain"
	}
	if len(d) > 253 {
		return "domain longer than 253 characters"
	}
	for _, l := range strings.Split(d, ".") {
		if msg := providerid.LabelProblem(l, true); msg != "" {
			return msg
		}
	}
	return ""
}

// text checks a free-text field; it reports false when it found a problem.
func (ps *problems) text(path, s string, max int) bool {
	switch {
	case len(s) > max:
		ps.Add(path, "", fmt.Sprintf("too long (%d bytes; at most %d)", len(s), max))
	case !utf8.ValidString(s):
		ps.Add(path, "", "not valid UTF-8")
	case strings.ContainsFunc(s, unicode.IsControl):
		ps.Add(path, s, "contains control characters")
	default:
		return true
	}
	return false
}

// listLen checks the length of a list; it reports false when it is too long.
func (ps *problems) listLen(path string, n int) bool {
	if n > maxListLen {
		ps.Add(path, "", fmt.Sprintf("too many entries (%d; at most %d)", n, maxListLen))
		return false
	}
	return true
}

func (ps *problems) providerConfiguration(raw json.RawMessage) {
	const p = "providerConfiguration"
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) == 0 || string(t) == "null":
	case len(raw) > maxProviderConfig:
		ps.Add(p, "", fmt.Sprintf("too large (%d bytes; at most %d)", len(raw), maxProviderConfig))
	case !json.Valid(t):
		ps.Add(p, "", "not valid JSON")
	case t[0] != '{':
		ps.Add(p, "", "must be a JSON object (or null)")
	}
}

func (ps *problems) onDemand(path string, o *OnDemand) {
	rp := path + ".rules"
	if o.Enabled && len(o.Rules) == 0 {
		ps.Add(rp, "", "on demand is enabled but there are no rules; add a rule or disable on demand")
	}
	if !ps.listLen(rp, len(o.Rules)) {
		return
	}
	for i := range o.Rules {
		ps.onDemandRule(problem.Index(rp, i), &o.Rules[i])
	}
}

func (ps *problems) onDemandRule(path string, r *OnDemandRule) {
	switch r.Action {
	case ActionConnect, ActionDisconnect, ActionIgnore:
		if len(r.ConnectionRules) > 0 {
			ps.Add(path+".connectionRules", "", fmt.Sprintf("allowed only with action %q", ActionEvaluateConnection))
		}
	case ActionEvaluateConnection:
		if len(r.ConnectionRules) == 0 {
			ps.Add(path+".connectionRules", "", fmt.Sprintf("action %q needs at least one connection rule", ActionEvaluateConnection))
		}
	case "":
		ps.Add(path+".action", "", `required: "connect", "disconnect", "evaluateConnection" or "ignore"`)
	default:
		ps.Add(path+".action", string(r.Action), `must be "connect", "disconnect", "evaluateConnection" or "ignore"`)
	}
	switch r.InterfaceTypeMatch {
	case "", InterfaceAny, InterfaceEthernet, InterfaceWiFi, InterfaceCellular:
	default:
		ps.Add(path+".interfaceTypeMatch", string(r.InterfaceTypeMatch), `must be "any", "ethernet", "wifi" or "cellular"`)
	}
	ps.list(path+".ssidMatch", r.SSIDMatch, func(s string) string {
		if len(s) == 0 || len(s) > 32 {
			return "an SSID has 1 to 32 bytes"
		}
		return ""
	})
	ps.list(path+".dnsSearchDomainMatch", r.DNSSearchDomainMatch, func(s string) string {
		return domainMessage(strings.TrimPrefix(s, "*."))
	})
	ps.list(path+".dnsServerAddressMatch", r.DNSServerAddressMatch, addrMessage)
	ps.probeURL(path+".probeURL", r.ProbeURL)
	if ps.listLen(path+".connectionRules", len(r.ConnectionRules)) {
		for i := range r.ConnectionRules {
			ps.connectionRule(problem.Index(path+".connectionRules", i), &r.ConnectionRules[i])
		}
	}
}

func (ps *problems) connectionRule(path string, r *ConnectionRule) {
	if len(r.Domains) == 0 {
		ps.Add(path+".domains", "", "at least one domain is required")
	}
	ps.list(path+".domains", r.Domains, domainMessage)
	switch r.Action {
	case ConnectIfNeeded:
	case NeverConnect:
		if len(r.RequiredDNSServers) > 0 {
			ps.Add(path+".requiredDNSServers", "", fmt.Sprintf("allowed only with action %q", ConnectIfNeeded))
		}
		if r.ProbeURL != "" {
			ps.Add(path+".probeURL", r.ProbeURL, fmt.Sprintf("allowed only with action %q", ConnectIfNeeded))
		}
	case "":
		ps.Add(path+".action", "", `required: "connectIfNeeded" or "neverConnect"`)
	default:
		ps.Add(path+".action", string(r.Action), `must be "connectIfNeeded" or "neverConnect"`)
	}
	ps.list(path+".requiredDNSServers", r.RequiredDNSServers, addrMessage)
	ps.probeURL(path+".probeURL", r.ProbeURL)
}

func (ps *problems) appRule(path string, r *AppRule) {
	if r.ExecutablePath == "" && r.User == "" && r.SystemdUnit == "" && r.CgroupPath == "" {
		ps.Add(path, "", "set at least one of executablePath, user, systemdUnit and cgroupPath")
	}
	if r.ExecutablePath != "" {
		ps.absPath(path+".executablePath", r.ExecutablePath)
	}
	if r.User != "" {
		if msg := userMessage(r.User); msg != "" {
			ps.Add(path+".user", r.User, msg)
		}
	}
	if r.SystemdUnit != "" {
		if msg := unitMessage(r.SystemdUnit); msg != "" {
			ps.Add(path+".systemdUnit", r.SystemdUnit, msg)
		}
	}
	if r.CgroupPath != "" {
		ps.absPath(path+".cgroupPath", r.CgroupPath)
	}
	ps.list(path+".matchDomains", r.MatchDomains, domainMessage)
}

// list checks each element of a list with check, which returns a message
// or "".
func (ps *problems) list(path string, l []string, check func(string) string) {
	if !ps.listLen(path, len(l)) {
		return
	}
	for i, s := range l {
		if msg := check(s); msg != "" {
			ps.Add(problem.Index(path, i), s, msg)
		}
	}
}

func (ps *problems) probeURL(path, s string) {
	if s == "" {
		return
	}
	if len(s) > maxShortText {
		ps.Add(path, "", fmt.Sprintf("too long (%d bytes; at most %d)", len(s), maxShortText))
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Scheme != "http" && u.Scheme != "https":
		ps.Add(path, s, "must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		ps.Add(path, s, "has no host")
	}
}

func (ps *problems) absPath(field, p string) {
	switch {
	case len(p) > maxShortText:
		ps.Add(field, "", fmt.Sprintf("too long (%d bytes; at most %d)", len(p), maxShortText))
	case !ps.text(field, p, maxShortText):
	case !strings.HasPrefix(p, "/"):
		ps.Add(field, p, "must be an absolute path")
	case path.Clean(p) != p:
		ps.Add(field, p, fmt.Sprintf("must be a clean path (%s)", path.Clean(p)))
	}
}

func addrMessage(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "not an IP address"
	}
	if a.Zone() != "" {
		return "zones are not allowed here"
	}
	return ""
}

// userMessage checks a user name or numeric uid for syntax; whether the
// user exists is checked where the rule is applied.
func userMessage(u string) string {
	if n, err := strconv.ParseUint(u, 10, 32); err == nil {
		if n == 1<<32-1 {
			return "uid 4294967295 is not a user"
		}
		return ""
	}
	if len(u) > 256 {
		return "too long for a user name"
	}
	if u[0] == '-' {
		return "a user name does not start with '-'"
	}
	for _, c := range []byte(u) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == '$') {
			return "not a user name or a numeric uid"
		}
	}
	return ""
}

// unitMessage checks a systemd unit name.
func unitMessage(u string) string {
	if len(u) > 255 {
		return "too long for a systemd unit name (at most 255 characters)"
	}
	dot := strings.LastIndexByte(u, '.')
	if dot <= 0 {
		return `needs a unit type suffix such as ".service", ".scope" or ".slice"`
	}
	switch u[dot:] {
	case ".service", ".scope", ".slice", ".socket":
	default:
		return `unit type must be ".service", ".scope", ".slice" or ".socket"`
	}
	for _, c := range []byte(u[:dot]) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(":-_.\\@", c) >= 0) {
			return fmt.Sprintf("contains %q, which systemd does not allow in unit names", rune(c))
		}
	}
	return ""
}
