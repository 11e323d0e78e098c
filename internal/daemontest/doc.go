// Package daemontest tests netextd as a system runs it: the real netextd
// binary in the client namespace of a test topology, the sample provider
// it starts as an unprivileged user, the sample server in the server
// namespace, and the netext command and the Go client on the control
// socket. It covers the end-to-end flow through the command, the API's
// permissions and consistency under concurrent calls, recovery after
// netextd is killed, start/stop churn, and the leak protection scenarios
// of docs/leak-tests.md, measured with a packet capture.
//
// The tests need root. They build the executables into a directory under
// /run that only root can write, with the provider manifest next to them,
// because the registry refuses providers whose files others could change.
// The package has no code of its own.
package daemontest
