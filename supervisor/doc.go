// Package supervisor runs provider processes: it starts a provider
// executable as an unprivileged user with the provider end of a protocol
// socket pair, relays its output into the daemon's log, and ends it.
//
// It knows nothing of network settings; package session drives the
// protocol spoken on [Process.Conn].
//
// # The provider process
//
// [Launch] starts a fresh process at every call, never reusing one:
//
//   - as the user and group in Options, with no supplementary groups. A
//     root daemon switching to a non-zero uid makes the kernel clear every
//     capability (permitted, effective and ambient); the child also starts
//     with no_new_privs set, so neither set-user-ID bits nor file
//     capabilities on the executable can give any back. Options.UID 0 is
//     refused unless Options.AllowRoot is set, which exists for tests. A
//     daemon that is not root cannot switch users and runs providers as
//     itself (tests without root do this);
//   - in a process group of its own, so that [Process.Kill] reaches every
//     process it started, and with SIGKILL as its parent-death signal, so
//     that it dies with the daemon;
//   - with "/" as its working directory, standard input from /dev/null, and
//     a minimal environment: PATH, NETEXT_PROVIDER_FD=3 and Options.Env;
//   - with the provider end of a providerproto socket pair as file
//     descriptor 3, and nothing else inherited but standard output and
//     error.
//
// Standard output and error are read line by line and logged to
// Options.Logger at info level with the stream's name. Lines longer than
// Options.MaxLineBytes are cut. The readers never block the child: when the
// logger falls behind, lines are dropped and counted.
//
// # Ending
//
// [Process.Done] is closed once the process has exited and has been reaped,
// its process group has been killed and its output has been read to the
// end; [Process.ExitStatus] then says how it ended ("exited with status 2",
// "killed by signal SIGSEGV"). [Process.Stop] closes the daemon's end of the
// connection, which a provider takes as its signal to exit, waits for a
// grace period and kills the group. No zombies are left behind.
//
// # Threads
//
// no_new_privs and the parent-death signal are properties of the thread
// that starts the child, not of the process. Launch therefore starts every
// provider from an OS thread of its own, locked to a goroutine that sets
// no_new_privs on it, waits for the provider to exit and then lets the
// thread end. Such a thread never runs other goroutines, and it outlives
// its child, so the parent-death signal fires only when the daemon dies.
//
// The package is Linux only; elsewhere [Launch] returns
// errors.ErrUnsupported.
package supervisor
