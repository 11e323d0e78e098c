// Package store keeps the saved VPN configurations of netext: the Linux
// counterpart of the NetworkExtension preferences that NEVPNManager and
// NETunnelProviderManager load and save, with NETunnelProviderProtocol's
// fields, VPN On Demand rules and per-app rules.
//
// The daemon owns one [Store], opened on its state directory (for example
// /var/lib/netext/configurations). Each [Configuration] lives in a
// human-readable file of its own, NAME.json, written atomically (temporary
// file, fsync, rename, fsync of the directory) with mode 0600 in a
// directory of mode 0700:
//
//	{
//	  "schemaVersion": 1,
//	  "name": "office",
//	  "description": "Office VPN",
//	  "providerID": "org.example.wireguard",
//	  "serverAddress": "vpn.example.com:51820",
//	  "username": "alice",
//	  "providerConfiguration": {"mtu": 1420},
//	  "enabled": true,
//	  "onDemand": {"enabled": true, "rules": [{"action": "connect", "interfaceTypeMatch": "wifi"}]},
//	  ...
//	  "generation": 3,
//	  "createdAt": "2026-01-02T10:00:00Z",
//	  "modifiedAt": "2026-01-05T08:30:00.123Z"
//	}
//
// # Secrets
//
// The credential of a configuration (a password or key material) is a
// [Secret], kept in a separate file (secrets/NAME, mode 0600) and never in
// the configuration file. List and Get only report [Configuration.HasSecret];
// the daemon reads the secret with [Store.Secret] when a session starts. A
// Secret prints and logs as "[redacted]", and the store never puts one in
// an error or a log line.
//
// # Concurrency and staleness
//
// Every configuration has a generation that counts its saves. A change
// names the generation it is based on, and [Store.Update], [Store.SetEnabled]
// and [Store.Delete] refuse a change based on an older generation with a
// [*StaleError] (errors.Is(err, ErrStale)), Apple's configurationStale: of
// two clients that read generation 3 and save, exactly one wins; the other
// must reload. Create of a taken name fails with ErrExists, any use of an
// unknown name with ErrNotFound, and an invalid configuration with a
// [*ValidationError] (ErrInvalid) that lists every problem with its path:
//
//	onDemand.rules[2].probeURL: "ftp://x": must be an http or https URL
//
// A Store is safe for concurrent use. One process owns the directory: Open
// takes an exclusive lock on it (ErrLocked otherwise).
//
// # Robust loading
//
// Open loads every file it can and reports the others through
// [Store.Problems] and the log, each with its path and reason: JSON errors,
// unknown fields, a missing, unknown or newer schema version, failed
// validation, a name that does not match the file name, symbolic links, and
// files not owned by the daemon's user or open to group or others. A broken
// file never hides the good ones. Temporary files left by a crash are
// removed, as are the secrets and state of configurations that are gone.
//
// Besides configurations, the store keeps per-configuration runtime facts
// that must survive daemon restarts, such as the last disconnect error
// ([Store.SetLastError], [Store.LastError]), in state/NAME.json.
//
// The store does not start sessions, look up providers or touch the
// network; it reads and writes its own files only.
package store
