package store

import (
	"strconv"
	"strings"
)

// A Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the field, in JSON names: "name",
	// "onDemand.rules[2].probeURL", "appRules[0].executablePath".
	Path string

	// Value is the offending value as text, or empty when the problem is
	// about something missing. Secrets and the provider configuration's
	// contents never appear here.
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

// ValidationError lists every problem [Configuration.Validate] found, in
// the order of the fields. Callers find it with errors.As; errors.Is(err,
// ErrInvalid) reports true for it.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, separated by "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

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

// index returns the path of element i of the list at path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
