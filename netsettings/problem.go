package netsettings

import (
	"strconv"
	"strings"
)

// A Problem is one thing wrong with a settings document or value.
type Problem struct {
	// Path locates the field, in JSON names: "ipv4.includedRoutes[3].destination",
	// "dns.servers[0]", "mtu". It is empty for the document as a whole.
	Path string

	// Value is the offending value as text, or empty when the problem is
	// about something missing. Secrets never appear here.
	Value string

	// Message says what is wrong, and often how to fix it.
	Message string
}

// String returns `path: "value": message`, leaving out what is empty.
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	if p.Value != "" {
		b.WriteString(strconv.Quote(p.Value) + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in settings by [Decode] or
// [Settings.Validate], in the order of the fields. Callers find it with
// errors.As.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems.
type problems []Problem

func (ps *problems) add(path, value, msg string) {
	*ps = append(*ps, Problem{Path: path, Value: value, Message: msg})
}

// err returns nil or a *ValidationError holding ps.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
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

// index returns the path of element i of the array at path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
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
