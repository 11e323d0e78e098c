// Package problem holds what netsettings and store share to report bad
// input: a [Problem] locating one wrong field by its JSON path, a [List]
// that collects them in the order found, and helpers to build paths and
// to join problems into an error message.
//
// Each of those packages keeps its own ValidationError, whose Error text
// is its own; both carry a []Problem. The package uses only the standard
// library, as netsettings must.
package problem
