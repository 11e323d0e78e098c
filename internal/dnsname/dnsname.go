// Package dnsname checks the syntax of DNS names, for the settings model and
// the DNS backends, which must agree on what a valid name is.
package dnsname

import (
	"strconv"
	"strings"
)

// Problem returns what is wrong with the domain name s, or "".
// Labels are letters, digits, hyphens and underscores (as in service names);
// a final dot is allowed.
func Problem(s string) string {
	name := strings.TrimSuffix(s, ".")
	switch {
	case name == "":
		return "empty domain"
	case len(name) > 253:
		return "longer than 253 characters"
	}
	for label := range strings.SplitSeq(name, ".") {
		if msg := LabelProblem(label); msg != "" {
			return msg
		}
	}
	return ""
}

// LabelProblem returns what is wrong with one label of a domain name, or "".
func LabelProblem(label string) string {
	switch {
	case label == "":
		return "empty label (two dots in a row, or a leading dot)"
	case len(label) > 63:
		return "label " + strconv.Quote(label) + " is longer than 63 characters"
	case label[0] == '-' || label[len(label)-1] == '-':
		return "label " + strconv.Quote(label) + " starts or ends with a hyphen"
	}
	for _, c := range label {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c >= 0x80:
			return "non-ASCII characters (write internationalized names in their xn-- form)"
		default:
			return "invalid character " + strconv.QuoteRune(c)
		}
	}
	return ""
}

// Within reports whether name is domain or a name below it. Both are
// compared as they are, so callers pass them in one form (lower case,
// without the final dot); "" is the root, which holds every name.
func Within(name, domain string) bool {
	return domain == "" || name == domain || strings.HasSuffix(name, "."+domain)
}
