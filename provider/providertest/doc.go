// Package providertest runs a provider in-process against an in-memory
// daemon, for unit tests without root.
//
// [Start] runs the provider with provider.Run over a real socket pair and
// plays the daemon's side of the protocol (docs/provider-protocol.md): it
// answers the hello, sends the start with the configuration and options of
// [Config], validates each setSettings with package netsettings and
// answers the first successful one with an in-memory tunnel device
// (tun/tuntest) as the packet flow, acknowledges and counts protected
// sockets, records reasserting and cancel notifications (and answers a
// cancel with a stop, as the daemon does), and sends app messages, path
// and configuration changes, sleep, wake and the stop when the test asks.
//
// The test is the "kernel side" of the tunnel device: packets it puts into
// [Harness.Device] (or writes with [Harness.WritePacket]) are what the
// provider reads from its packet flow, and packets the provider writes are
// what [Harness.ReadPacket] returns.
//
//	h := providertest.Start(t, &myProvider{}, providertest.Config{
//		Configuration: provider.Configuration{ServerAddress: "192.0.2.1:4500"},
//	})
//	if err := h.WaitConnected(ctx); err != nil {
//		t.Fatal(err)
//	}
//	t.Log(h.Settings())                  // what the provider asked for
//	h.WritePacket(ctx, pkt)              // a packet routed into the tunnel
//	out, err := h.ReadPacket(ctx)        // a packet the provider wrote
//	if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
//		t.Fatal(err)
//	}
//
// Everything is torn down in t.Cleanup: a provider still running is
// stopped (StopReasonNone), the connection closed, and Run waited for, so
// that tests can check for leaked goroutines.
//
// What the harness cannot do: [provider.Tunnel.DialTunnel] needs a kernel
// device and fails under the harness, and protected sockets are not marked
// (there is no daemon to mark them); the harness only checks that they are
// sockets and counts them.
package providertest
