package netcfg

import (
	"fmt"
	"net/netip"
	"testing"
)

// manyRoutes returns a config with n included /32 routes in 10.0.0.0/8.
func manyRoutes(n int) *Config {
	cfg := &Config{
		MTU:       1420,
		Addresses: []netip.Prefix{pfx("10.255.255.254/32")},
	}
	cfg.IncludedRoutes = make([]Route, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		cfg.IncludedRoutes[i] = Route{Dst: netip.PrefixFrom(a, 32)}
	}
	return cfg
}

// BenchmarkApplyRoutes measures Set from nothing to n routes (journal
// included), and BenchmarkRemoveRoutes Set from n routes to nil.
func BenchmarkApplyRoutes(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchRoutes(b, n, true) })
	}
}

func BenchmarkRemoveRoutes(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchRoutes(b, n, false) })
	}
}

func benchRoutes(b *testing.B, n int, apply bool) {
	l := newLab(b)
	m := l.manager(b)
	cfg := manyRoutes(n)
	b.ResetTimer()
	for range b.N {
		if !apply {
			b.StopTimer()
		}
		if err := m.Set(cfg); err != nil {
			b.Fatal(err)
		}
		if apply {
			b.StopTimer()
		} else {
			b.StartTimer()
		}
		if err := m.Set(nil); err != nil {
			b.Fatal(err)
		}
		if apply {
			b.StartTimer()
		}
	}
	b.StopTimer()
	if s := m.Stats(); s.RouteAdds != b.N*n || s.RouteDels != b.N*n {
		b.Fatalf("stats %+v, want %d route adds and deletes", s, b.N*n)
	}
}
