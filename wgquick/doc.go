// Package wgquick reads and writes WireGuard configuration files in the
// format of wg-quick(8), and turns them into the configuration of netext's
// WireGuard provider (package providers/wireguard).
//
// [Parse] reads a file:
//
//	[Interface]
//	PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
//	Address = 10.0.0.2/32, fd00::2/128
//	DNS = 10.0.0.1, corp.example
//	MTU = 1420
//
//	[Peer]
//	PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
//	PresharedKey = /UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=
//	AllowedIPs = 0.0.0.0/0, ::/0
//	Endpoint = vpn.example.net:51820
//	PersistentKeepalive = 25
//
// Keys and section names are case-insensitive, "#" starts a comment, and
// list keys (Address, DNS, AllowedIPs) take comma-separated values and may
// be repeated, as wg-quick allows. The other keys may appear once per
// section. Addresses and allowed IPs without a prefix length are single
// hosts (/32, /128); allowed IPs have their host bits cleared, as wg(8)
// does. DNS entries that are IP addresses are servers, the others search
// domains. Endpoint is "host:port", with IPv6 addresses in brackets and
// host names allowed (the provider resolves them). PersistentKeepalive is
// seconds or "off".
//
// # What netext does not support
//
// wg-quick drives a whole host; netext's daemon applies the tunnel's
// addresses, routes and DNS itself, and every peer's AllowedIPs become the
// tunnel's routes (0.0.0.0/0 and ::/0 the default routes). Keys that make
// no sense there are handled as follows:
//
//   - PreUp, PostUp, PreDown, PostDown: ignored with a [Warning]. netext
//     does not run commands. A file that relies on them for a kill switch
//     gets none; netext's configurations have their own
//     (includeAllNetworks).
//   - SaveConfig: ignored with a warning when true: netext keeps the
//     configuration itself and never writes the file.
//   - FwMark: ignored with a warning when set: the daemon marks the
//     tunnel's own sockets so that they bypass the tunnel.
//   - Table: "auto" (wg-quick's default) is accepted. Any other value is
//     an error, because ignoring it would change the routing the file asks
//     for: "off" means no routes at all, and a table number means routes
//     in a table that only the file's own rules (usually in PostUp) use.
//     Netext would route all of AllowedIPs instead, and could send traffic
//     into the tunnel that the file keeps out of it.
//
// Unknown keys and sections are errors, as are lines outside any section,
// a missing [Interface] or PrivateKey, a [Peer] without PublicKey, files
// without peers, and two peers with one public key.
//
// # Errors
//
// Parse reports every problem of a file at once, in a *[ParseError], one
// line each in the form "FILE:LINE: Key: value: reason". The values of
// PrivateKey and PresharedKey never appear in errors.
//
// # Secrets
//
// [Config.ProviderConfiguration] returns the provider's configuration
// (JSON) and [Config.Secret] the secret that goes to the secret store: the
// private key and the peers' preshared keys. Keys appear only in the
// latter; [Config.String] and the fmt verbs redact them. [Format] writes
// the file back, keys included.
package wgquick
