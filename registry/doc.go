// Package registry finds the installed providers of netext by id.
//
// A provider is installed by dropping a manifest, one JSON file per
// provider, into a providers directory, such as /etc/netext/providers.d
// (the administrator's) or /usr/lib/netext/providers.d (the packages'):
//
//	{
//	  "id": "org.example.wireguard",
//	  "description": "WireGuard",
//	  "executable": "/usr/lib/netext/netext-provider-wireguard",
//	  "user": "netext-provider",
//	  "kind": "packet"
//	}
//
// The daemon runs as root and starts the executable as user, so a manifest
// decides what root runs. [Load] therefore accepts a manifest only when:
//
//   - it decodes strictly (unknown fields are errors) and has every field
//     but "description";
//   - "id" is a reverse-DNS name: two or more dot-separated labels of
//     letters, digits and '-', each 1 to 63 long and not starting or ending
//     with '-', at most 255 in all;
//   - "executable" is an absolute, clean path to a regular file with an
//     execute bit;
//   - the executable, the manifest and every directory above either of them
//     (and above the targets of symbolic links on the way) are owned by root
//     and not writable by group or others;
//   - "user" (a user name or a numeric uid) exists and is not root (uid 0);
//   - "kind" is "packet" (IP packets, NEPacketTunnelProvider) or "ethernet"
//     (Ethernet frames, NEEthernetTunnelProvider).
//
// Each manifest that fails is reported by [Registry.Problems] with its path,
// the field and the reason, naming the exact path that is unsafe; it never
// hides the good ones. When two manifests claim one id, the one in the
// earlier directory (or, in one directory, the earlier file name) wins and
// the other is reported.
//
// A Registry is immutable and safe for concurrent use; to see changes, Load
// again. The checks are made at Load: a file changed afterwards is not
// noticed until the next Load.
package registry
