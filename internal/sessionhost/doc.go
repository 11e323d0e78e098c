// Package sessionhost runs a session (package session) in a child process
// for tests: a session works in the network namespace of its process, so a
// test starts its own binary again inside the client namespace as the
// session's host, and drives it over the child's standard input and
// output.
//
// The child reads commands, one per line — "start", "stop", "status", or
// anything else as an app message for the provider — and answers each
// with one JSON line, a [Reply]; its log goes to standard error, which the
// parent keeps ([Host.Log]). When its standard input ends it closes its
// session and exits. Every command has a deadline of 60 s in the child and
// 90 s in the parent.
//
// A test package's TestMain (or the hook it has for children) calls
// [Main] first:
//
//	func TestMain(m *testing.M) {
//		if code, ok := sessionhost.Main(hostEnv); ok {
//			os.Exit(code)
//		}
//		...
//	}
//
// The package is imported only from tests.
package sessionhost
