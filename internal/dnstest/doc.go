// Package dnstest tests the DNS of tunnels as a system runs it: the real
// netextd in the client namespace of a test topology, the sample provider
// it starts, the sample server in the server namespace, a DNS server
// behind the tunnel (in the server namespace, on the sample server's
// tunnel address, also over TLS and HTTPS) and one on the underlay (in the
// internet namespace) that answers every other name.
//
// The client namespace gets a resolv.conf of its own in
// /etc/netns/<namespace>/, which `ip netns exec` bind-mounts over
// /etc/resolv.conf for netextd and for the lookups (getent, through the
// C library); the host's /etc/resolv.conf is never read or written. The
// systemd-resolved tests run the real resolved in the client namespace,
// with a private system bus, as package dns's own tests do.
//
// The tests need root. The package has no code of its own.
package dnstest
