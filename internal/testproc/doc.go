// Package testproc runs the processes of tests: it builds commands, or
// copies the test binary, into directories that every user may enter (so
// that providers running as nobody can execute them), runs the test binary
// again as a child inside a network namespace, installs netextd and
// providers with their manifests where netextd accepts them (under /run), starts child processes
// whose output a test waits for and that are stopped when the test ends,
// and checks what processes leave behind (goroutines, descriptors) or run
// with (user, capabilities).
//
// Every process a helper starts is stopped in t.Cleanup, also when the test
// fails, and every wait has a deadline.
//
// The package is imported only from tests.
package testproc
