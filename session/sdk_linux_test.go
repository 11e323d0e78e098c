package session

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netcfg"
)

// TestNamespaceSDKProvider runs a provider written with the SDK (package
// provider) against the session, with the real device and netcfg: both
// ends of the protocol as shipped. The SDK rebuilds the device from its
// descriptor, so an in-memory device does not do.
func TestNamespaceSDKProvider(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	underlay(t, ns)
	before := ns.Snapshot(t)
	runChild(t, ns, "TestChildSDKProvider", "sdk")
	if diff := cmp.Diff(before, ns.Snapshot(t)); diff != "" {
		t.Errorf("namespace changed (-before +after):\n%s", diff)
	}
}

func TestChildSDKProvider(t *testing.T) {
	childCase(t)
	h := newHarness(t, harnessOptions{real: true, settings: settingsA, config: func(c *Config) {
		c.Provider.Path = sdkProviderPath
		c.Provider.Args = nil
	}})
	h.mustStart()
	routes := runCmd(t, "ip", "route", "show", "table", fmt.Sprint(netcfg.DefaultTable))
	if !strings.HasPrefix(routes, "default dev netext") {
		t.Errorf("routes in table %d: %q", netcfg.DefaultTable, routes)
	}
	ctx := context.Background()
	if out, err := h.s.SendMessage(ctx, []byte("hello")); err != nil || string(out) != "hello" {
		t.Errorf("app message: %q, %v", out, err)
	}
	out, err := h.s.SendMessage(ctx, []byte("invalid"))
	if err != nil || !strings.HasPrefix(string(out), "true ") || !strings.Contains(string(out), "mtu") {
		t.Errorf("invalid settings through the SDK: %q, %v", out, err)
	}
	h.stop(providerproto.StopUserInitiated)
	if st := h.s.Status(); st.State != Disconnected || st.LastError != nil {
		t.Errorf("status after Stop: %+v", st)
	}
	if !strings.Contains(h.logs.text(), "line=stop userInitiated") {
		t.Errorf("StopTunnel not called with userInitiated:\n%s", h.logs.text())
	}

	// Cancel from the provider ends the session with its error.
	h.mustStart()
	_, _ = h.s.SendMessage(ctx, []byte("cancel"))
	st := h.waitDisconnected()
	if !IsCode(st.LastError, CodeProviderFailed) || !strings.Contains(st.LastError.Error(), "credentials expired") {
		t.Errorf("last error after cancel: %v", st.LastError)
	}
	if !strings.Contains(h.logs.text(), "line=stop providerFailed") {
		t.Errorf("StopTunnel not called with providerFailed")
	}
}
