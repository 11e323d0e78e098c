// Package nettest builds throwaway network namespaces for tests that need
// root: fresh namespaces, veth pairs, a client/internet/server topology,
// route lookups (`ip route get` over netlink, with and without a mark),
// reachability checks and text snapshots of a namespace's network state.
//
// Every namespace, link and process a helper creates is removed in
// t.Cleanup, also when the test fails. Each namespace gets its own copy of
// the host's resolv.conf in /etc/netns/<name>/, which `ip netns exec` (and
// so NS.Command) mounts over /etc/resolv.conf, so that a daemon under test
// that rewrites resolv.conf can never reach the host's file. Nothing here touches the host's own
// interfaces, routes, rules or files: all state lives in namespaces the test
// created.
//
// Root tests call RequireRoot first. It skips the test when not running as
// root, and fails it instead when NETEXT_REQUIRE_ROOT_TESTS=1, as CI sets, so
// that a root test can never pass by being skipped.
//
// The package is imported only from tests.
package nettest
