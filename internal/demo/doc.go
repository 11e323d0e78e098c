// Package demo is `netext demo`: a WireGuard tunnel between two throwaway
// network namespaces, run by the real netextd and WireGuard provider,
// against an unmodified wireguard-go server, with nothing of the host
// touched and nothing left behind.
//
// [Run] creates two unnamed network namespaces, "client" and "server",
// joined by a veth pair; starts the server ([ServerMain], the hidden
// command `netext demo-server`) in the server namespace: wireguard-go's
// device, TUN and socket code as they are, configured through its UAPI;
// starts netextd in the client namespace with a provider directory of its
// own that holds the WireGuard provider's manifest; writes a wg-quick file
// for the client (keys generated for the run) and imports it with `netext
// config import`; starts the session with `netext start`; pings the server
// through the tunnel over IPv4 and IPv6, moves TCP both ways for a few
// seconds and reports the throughput; shows `netext status`; stops the
// session; and removes everything. It prints each step as it goes.
//
// # Nothing left behind
//
// The namespaces have no names (nothing in /run/netns): they exist as long
// as a descriptor of this process or a process inside them holds them.
// The children are started from a locked OS thread switched into their
// namespace with netns.Set, so that they inherit it; each is in a process
// group of its own (a Ctrl-C on the terminal reaches netext alone, which
// then stops them in order) and gets a signal when that thread ends, so
// they also end when netext is killed: netextd with SIGTERM, which stops
// the session and restores the namespace, the server with SIGKILL. The
// files (configuration, state, the copy of the provider, logs) are in one
// directory under /run, removed at the end; a directory that a killed run
// left is removed by the next run. Cleanup runs on success, on failure
// and when the context ends (Ctrl-C), each wait with a deadline.
//
// netextd runs with --dns-mode direct (never the host's systemd-resolved,
// which D-Bus reaches across network namespaces) in a mount namespace of
// its own in which /etc/resolv.conf is a file of the run's, so that no DNS
// it applies can reach the host's resolver configuration. The demo's
// wg-quick file has no DNS line all the same, so that netextd writes no
// resolv.conf at all (the direct backend stages its writes next to the
// file, in the host's /etc).
//
// # Executables
//
// The demo runs netextd and netext-provider-wireguard from
// [Options.BinDir], by default the directory of the running netext (where
// scripts/netext builds all three), and falls back to the installed
// /usr/sbin/netextd and /usr/lib/netext/netext-provider-wireguard. The
// provider is copied into the run's directory, which only root can
// write, because netextd runs only providers whose files root alone can
// change.
package demo
