package daemon

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/netsettings"
)

func settings(t *testing.T, js string) *netsettings.Settings {
	t.Helper()
	s, err := netsettings.Decode([]byte(js))
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		t.Fatalf("settings %s: %v", js, err)
	}
	return s
}

func TestClash(t *testing.T) {
	const (
		def4   = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["10.0.0.2/24"],"includedRoutes":[{"destination":"0.0.0.0/0"}]}}`
		net10  = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["10.0.0.2/24"],"includedRoutes":[{"destination":"10.0.0.0/8"}]}}`
		net10b = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["10.1.0.2/24"],"includedRoutes":[{"destination":"10.1.0.0/16"}]}}`
		net172 = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["172.16.0.2/24"],"includedRoutes":[{"destination":"172.16.0.0/12"}]}}`
		v6     = `{"tunnelRemoteAddress":"a","ipv6":{"addresses":["fd00::2/64"],"includedRoutes":[{"destination":"fd00::/8"}]}}`
		dnsAll = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["192.168.9.2/24"]},"dns":{"servers":["192.168.9.1"]}}`
		dnsCo  = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["192.168.8.2/24"]},"dns":{"servers":["192.168.8.1"],"matchDomains":["corp.example"]}}`
		dnsSub = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["192.168.7.2/24"]},"dns":{"servers":["192.168.7.1"],"matchDomains":["Eng.Corp.Example."]}}`
		dnsOth = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["192.168.6.2/24"]},"dns":{"servers":["192.168.6.1"],"matchDomains":["other.example"]}}`
		dnsDef = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["192.168.5.2/24"]},"dns":{"servers":["192.168.5.1"],"matchDomains":["", "x.example"]}}`
		// Nil matchDomains: the servers answer for the search domains,
		// or for every name with the default route (dns.FromSettings).
		dnsFull = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["192.168.4.2/24"],"includedRoutes":[{"destination":"0.0.0.0/0"}]},"dns":{"servers":["192.168.4.1"]}}`
		dnsSrch = `{"tunnelRemoteAddress":"a","ipv4":{"addresses":["192.168.3.2/24"]},"dns":{"servers":["192.168.3.1"],"searchDomains":["corp.example"]}}`
	)
	for _, tc := range []struct {
		name, a, b, want string
		allA             bool // a's configuration has includeAllNetworks
	}{
		{name: "includeAllNetworks claims the default route", a: net172, b: net10, allA: true,
			want: `route 0.0.0.0/0 of "a" overlaps route 10.0.0.0/8 of "b"`},
		{name: "includeAllNetworks claims only configured families", a: net172, b: v6, allA: true},
		{name: "includeAllNetworks with the default route included", a: def4, b: def4, allA: true, want: "both route 0.0.0.0/0"},
		{"same default route", def4, def4, "both route 0.0.0.0/0", false},
		{"default and a network", def4, net10, `route 0.0.0.0/0 of "a" overlaps route 10.0.0.0/8 of "b"`, false},
		{"nested networks", net10b, net10, `route 10.1.0.0/16 of "a" overlaps route 10.0.0.0/8 of "b"`, false},
		{"disjoint networks", net10, net172, "", false},
		{"other family", def4, v6, "", false},
		{"two default resolvers", dnsFull, dnsDef, "both want to be the default DNS resolver", false},
		{"servers without domains claim nothing", dnsAll, dnsDef, "", false},
		{"search domains are match domains", dnsSub, dnsSrch, `DNS domain "eng.corp.example" of "a" overlaps DNS domain "corp.example" of "b"`, false},
		{"default and split DNS", dnsAll, dnsCo, "", false},
		{"nested DNS domains", dnsSub, dnsCo, `DNS domain "eng.corp.example" of "a" overlaps DNS domain "corp.example" of "b"`, false},
		{"other DNS domains", dnsOth, dnsCo, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clash("a", claimOf(settings(t, tc.a), tc.allA), "b", claimOf(settings(t, tc.b), false))
			if got != tc.want {
				t.Errorf("clash:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestClashLimitsItsList(t *testing.T) {
	a := &claim{routes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	b := &claim{}
	for i := range 5 {
		b.routes = append(b.routes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
	}
	got := clash("a", a, "b", b)
	if !strings.HasSuffix(got, "; and 2 more") || strings.Count(got, "overlaps") != 3 {
		t.Errorf("clash: %q", got)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.StateDir, c.Socket, c.ProviderDirs, c.Group, c.Table, c.RulePriority, c.MaxSessions, c.interfaceName(3)}
	want := []any{"/var/lib/netext", apitype.DefaultSocketPath, DefaultProviderDirs, "netext", 7373, 7300, 8, "netext3"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("defaults (-got +want):\n%s", diff)
	}
	o := c.netcfgOptions(2)
	if o.Table != 7375 || o.RulePriority != 7320 || o.StateDir != "/var/lib/netext/netcfg" {
		t.Errorf("slot 2: %+v", o)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{StateDir: "state"}, "Config.StateDir"},
		{Config{Socket: "s.sock"}, "Config.Socket"},
		{Config{MaxSessions: 101}, "Config.MaxSessions"},
		{Config{Table: 250}, "Config.Table"},
		{Config{RulePriority: 32700}, "Config.RulePriority"},
		{Config{InterfacePrefix: "averyverylongname"}, "Config.InterfacePrefix"},
		{Config{ProviderDirs: []string{"rel"}}, "Config.ProviderDirs"},
	} {
		if _, err := tc.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.json")
	j := newJournal(path)
	if err := j.update("b", func(e *journalEntry) { e.Slot, e.State = 1, "connecting" }); err != nil {
		t.Fatal(err)
	}
	if err := j.update("a", func(e *journalEntry) { e.State, e.PID, e.PIDStart = "connected", 42, 7 }); err != nil {
		t.Fatal(err)
	}
	f, err := readJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []journalEntry{{Name: "a", State: "connected", PID: 42, PIDStart: 7}, {Name: "b", Slot: 1, State: "connecting"}}
	if diff := cmp.Diff(f.Sessions, want); diff != "" || f.BootID != bootID() {
		t.Errorf("journal (-got +want):\n%s\nboot %q", diff, f.BootID)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal file: %v %v", fi.Mode(), err)
	}
	j.remove("a")
	j.remove("b")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("empty journal still on disk: %v", err)
	}
	if f, err := readJournal(path); err != nil || len(f.Sessions) != 0 {
		t.Errorf("missing journal: %+v, %v", f, err)
	}
	os.WriteFile(path, []byte(`{"version": 9}`), 0o600)
	if _, err := readJournal(path); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("journal of another version: %v", err)
	}
}

func TestKillOrphan(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	st, err := readProcStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)

	// A pid whose start time differs is another process: left alone.
	killOrphan(journalEntry{Name: "x", PID: cmd.Process.Pid, PIDStart: st.Start + 1}, log)
	select {
	case <-exited:
		t.Fatal("killed a process whose start time differs")
	case <-time.After(100 * time.Millisecond):
	}
	killOrphan(journalEntry{Name: "x", PID: cmd.Process.Pid, PIDStart: st.Start}, log)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan still runs")
	}
}

func TestCrashMessage(t *testing.T) {
	for _, tc := range []struct {
		state    string
		sameBoot bool
		want     string
	}{
		{"connected", true, "netextd stopped unexpectedly while the session was connected"},
		{"reasserting", true, "netextd stopped unexpectedly while the session was connected"},
		{"connecting", true, "netextd stopped unexpectedly while the session was connecting"},
		{"connected", false, "the system restarted while the session was connected"},
	} {
		if got := crashMessage(tc.state, tc.sameBoot); got != tc.want {
			t.Errorf("crashMessage(%q, %v) = %q, want %q", tc.state, tc.sameBoot, got, tc.want)
		}
	}
}

func TestSdNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Errorf("read %q, %v; want READY=1", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative")
	if err := sdNotify("READY=1"); err == nil {
		t.Error("a relative NOTIFY_SOCKET was accepted")
	}
}

func TestConversionRoundTrip(t *testing.T) {
	in := apitype.Configuration{
		Name: "office", Description: "Office", ProviderID: "org.example.x", ServerAddress: "vpn.example.com",
		Username: "ann", ProviderConfiguration: []byte(`{"mtu":1400}`), Enabled: true,
		OnDemand: apitype.OnDemand{Enabled: true, Rules: []apitype.OnDemandRule{{
			Action: "evaluateConnection", InterfaceTypeMatch: "wifi", SSIDMatch: []string{"home"},
			ConnectionRules: []apitype.ConnectionRule{{Domains: []string{"corp.example"}, Action: "connectIfNeeded", ProbeURL: "https://corp.example/"}},
		}}},
		IncludeAllNetworks: true, ExcludeLocalNetworks: true, EnforceRoutes: true, DisconnectOnSleep: true,
		RoutingMethod: "sourceApplication",
		AppRules:      []apitype.AppRule{{ExecutablePath: "/usr/bin/firefox", User: "ann", SystemdUnit: "a.service", CgroupPath: "/user.slice", MatchDomains: []string{"example.com"}}},
		Generation:    3,
	}
	sc, err := toStore(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("converted configuration invalid: %v", err)
	}
	if diff := cmp.Diff(fromStore(sc), in); diff != "" {
		t.Errorf("round trip (-got +want):\n%s", diff)
	}
}

func TestStopReason(t *testing.T) {
	if r, err := stopReason(""); err != nil || r != "userInitiated" {
		t.Errorf(`stopReason(""): %q, %v`, r, err)
	}
	if r, err := stopReason("idleTimeout"); err != nil || r != "idleTimeout" {
		t.Errorf(`stopReason("idleTimeout"): %q, %v`, r, err)
	}
	if _, err := stopReason("sleep"); !apitype.IsCode(err, apitype.CodeInvalid) {
		t.Errorf(`stopReason("sleep"): %v, want invalid`, err)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	err := Run(context.Background(), Config{StateDir: "relative"})
	if err == nil || !strings.Contains(err.Error(), "Config.StateDir") {
		t.Errorf("Run: %v", err)
	}
}
