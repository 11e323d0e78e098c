// Package e2e holds end-to-end tests that join netext's parts the way a
// system runs them: a session host with the real launcher, tunnel device
// and netcfg in a client namespace, an unprivileged provider process it
// starts, and the provider's server in a server namespace, with traffic
// checked on both sides.
//
// The tests need root and build the executables they run. The package has
// no code of its own.
package e2e
