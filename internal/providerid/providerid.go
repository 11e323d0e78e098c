package providerid

import (
	"fmt"
	"strings"
)

// Problem returns what is wrong with id as a provider id, or "" when it is
// one. The message does not repeat id.
func Problem(id string) string {
	if len(id) > 255 {
		return "too long (at most 255 characters)"
	}
	labels := strings.Split(id, ".")
	if len(labels) < 2 {
		return "must be a reverse-DNS name such as org.example.wireguard"
	}
	for _, l := range labels {
		if msg := LabelProblem(l, false); msg != "" {
			return msg
		}
	}
	return ""
}

// LabelProblem returns what is wrong with one dot-separated label of a
// provider id, or "". With underscore it also allows '_', as the labels of
// DNS domain names may hold (service names); the store checks domains so.
func LabelProblem(l string, underscore bool) string {
	if l == "" {
		return "has an empty label (two dots in a row, or a dot at an end)"
	}
	if len(l) > 63 {
		return fmt.Sprintf("label %q is longer than 63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Sprintf("label %q starts or ends with '-'", l)
	}
	for _, c := range []byte(l) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || underscore && c == '_') {
			return fmt.Sprintf("label %q contains %q; use letters, digits and '-'", l, rune(c))
		}
	}
	return ""
}
