package problem

import (
	"strconv"
	"strings"
)

// A Problem is one thing wrong with a document or value.
type Problem struct {
	// Path locates the field, in JSON names: "ipv4.includedRoutes[3].destination",
	// "onDemand.rules[2].probeURL", "mtu". It is empty for the document as a
	// whole.
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

// A List collects Problems in the order found. The zero List is empty and
// ready to use.
type List []Problem

// Add appends the problem with the given path, value and message.
func (l *List) Add(path, value, msg string) {
	*l = append(*l, Problem{Path: path, Value: value, Message: msg})
}

// Join returns the String of each problem, separated by sep.
func Join(ps []Problem, sep string) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, sep)
}

// Index returns the path of element i of the list at path.
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
