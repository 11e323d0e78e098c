package nettest

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTopologyReachability(t *testing.T) {
	tp := NewTopology(t)
	for _, tc := range []struct {
		name string
		from *NS
		dst  netip.Addr
	}{
		{"client to server v4", tp.Client, tp.ServerAddr4.Addr()},
		{"client to server v6", tp.Client, tp.ServerAddr6.Addr()},
		{"server to client v4", tp.Server, tp.ClientAddr4.Addr()},
		{"client to public host v4", tp.Client, tp.PublicHost4},
		{"client to public host v6", tp.Client, tp.PublicHost6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.from.Ping(tc.dst, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := tp.Client.Ping(netip.MustParseAddr("192.0.2.99"), 300*time.Millisecond); err == nil {
		t.Error("ping to an address nobody holds succeeded")
	}
}

func TestRouteGet(t *testing.T) {
	tp := NewTopology(t)
	tp.Client.Run(t, "ip", "route", "add", "unreachable", "192.0.2.128/25")
	tp.Client.Run(t, "ip", "rule", "add", "fwmark", "0x42", "lookup", "77", "priority", "100")
	tp.Client.Run(t, "ip", "route", "add", "blackhole", "192.0.2.0/24", "table", "77")
	for _, tc := range []struct {
		dst  string
		mark uint32
		want string
	}{
		{"203.0.113.2", 0, "unicast via 198.51.100.1 dev eth0 table 254"},
		{"198.51.100.1", 0, "unicast dev eth0 table 254"},
		{"2001:db8:5::2", 0, "unicast via 2001:db8:c::1 dev eth0 table 254"},
		{"192.0.2.200", 0, "unreachable"},
		{"192.0.2.80", 0x42, "blackhole"},
		{"192.0.2.80", 0, "unicast via 198.51.100.1 dev eth0 table 254"},
	} {
		got, err := tp.Client.RouteGet(netip.MustParseAddr(tc.dst), tc.mark)
		if err != nil {
			t.Fatalf("RouteGet(%s, %#x): %v", tc.dst, tc.mark, err)
		}
		if got.String() != tc.want {
			t.Errorf("RouteGet(%s, %#x) = %q, want %q", tc.dst, tc.mark, got, tc.want)
		}
	}
}

func TestSnapshotAndCleanup(t *testing.T) {
	var path string
	t.Run("inner", func(t *testing.T) {
		ns := NewNS(t)
		path = ns.Path()
		before := ns.Snapshot(t)
		ns.AddDummy(t, "d0")
		ns.AddAddr(t, "d0", "192.0.2.1/24")
		after := ns.Snapshot(t)
		if before == after {
			t.Fatal("snapshot did not change after adding a link")
		}
		for _, want := range []string{"d0", "192.0.2.1/24", "local 192.0.2.1 dev d0 table local"} {
			if !strings.Contains(after, want) {
				t.Errorf("snapshot lacks %q:\n%s", want, after)
			}
		}
		// A process left running inside must not keep the namespace alive.
		cmd := ns.Command(t.Context(), "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Wait() })
	})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after cleanup (stat: %v)", path, err)
	}
}
