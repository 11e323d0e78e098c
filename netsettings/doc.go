// Package netsettings models the network settings a packet tunnel provider
// hands to the daemon: the Linux counterpart of Apple's
// NEPacketTunnelNetworkSettings and NEEthernetTunnelNetworkSettings.
//
// A [Settings] value holds the tunnel's remote address, its IPv4 and IPv6
// addresses and routes, DNS and proxy settings, the MTU (or the tunnel's
// per-packet overhead) and, for Ethernet tunnels, the interface's MAC address.
// A nil *Settings means "no settings": the daemon removes everything it applied
// and keeps the tunnel device.
//
// Settings cross the boundary between a provider and the daemon as JSON. The
// encoding is stable and documented field by field in docs/settings.md, so a
// provider written in another language can produce it by hand:
//
//   - [Settings.Encode] (and json.Marshal) write the canonical form;
//   - [Decode] (and json.Unmarshal into a Settings) read it strictly: unknown
//     fields are errors, and every problem in a document is reported at once,
//     each with the path of the field it concerns;
//   - [Settings.Validate] checks the meaning of decoded or hand-built
//     settings, again reporting every problem with its path.
//
// Both Decode and Validate return a [*ValidationError] listing [Problem]s:
//
//	s, err := netsettings.Decode(data)
//	if err == nil {
//		err = s.Validate()
//	}
//	var verr *netsettings.ValidationError
//	if errors.As(err, &verr) {
//		for _, p := range verr.Problems {
//			fmt.Println(p.Path, p.Message)
//		}
//	}
//
// Values are plain data: the package does no I/O, and [Settings.Clone] and
// [Settings.Equal] make copies safe to hand across goroutines and cheap to
// compare before re-applying. Proxy passwords never appear in the output of
// String, fmt verbs or log/slog (see [ProxyServer]).
package netsettings
