package store

import "github.com/netext/netext/internal/problem"

// A Problem is one thing wrong with a configuration. Its Path locates the
// field, in JSON names: "name", "onDemand.rules[2].probeURL",
// "appRules[0].executablePath". Its Value is the offending value as text, or
// empty when the problem is about something missing; secrets and the
// provider configuration's contents never appear there. Its Message says
// what is wrong, and often how to fix it.
type Problem = problem.Problem

// ValidationError lists every problem [Configuration.Validate] found, in
// the order of the fields. Callers find it with errors.As; errors.Is(err,
// ErrInvalid) reports true for it.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, separated by "; ".
func (e *ValidationError) Error() string {
	return "invalid configuration: " + problem.Join(e.Problems, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// problems collects Problems.
type problems struct{ problem.List }

// err returns nil or a *ValidationError holding ps.
func (ps *problems) err() error {
	if len(ps.List) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.List}
}
