package netsettings

import (
	"strconv"

	"github.com/netext/netext/internal/problem"
)

// A Problem is one thing wrong with a settings document or value. Its Path
// locates the field, in JSON names: "ipv4.includedRoutes[3].destination",
// "dns.servers[0]", "mtu"; it is empty for the document as a whole. Its
// Value is the offending value as text, or empty when the problem is about
// something missing; secrets never appear there. Its Message says what is
// wrong, and often how to fix it.
type Problem = problem.Problem

// ValidationError lists every problem found in settings by [Decode] or
// [Settings.Validate], in the order of the fields. Callers find it with
// errors.As.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	return problem.Join(e.Problems, "\n")
}

// problems collects Problems.
type problems struct{ problem.List }

// err returns nil or a *ValidationError holding ps.
func (ps *problems) err() error {
	if len(ps.List) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.List}
}

// field returns the path of member name of the object at path.
func field(path, name string) string {
	if !isIdent(name) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
