package wgtest

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/netext/netext/internal/nettest"
)

// resolvConf is the client namespace's resolv.conf before the session.
const resolvConf = "# the client namespace's own resolv.conf\nnameserver 192.0.2.53\n"

// privateResolvConf gives processes that `ip netns exec` starts in ns
// their own /etc/resolv.conf: ip netns exec mounts /etc/netns/NAME/* over
// /etc in a mount namespace of their own. netextd changes that file, never
// the host's. It returns the file's path; it is removed when t ends.
func privateResolvConf(t *testing.T, ns *nettest.NS) string {
	t.Helper()
	return ns.SetResolvConf(t, resolvConf, 0o644)
}

// hostResolvConf describes the host's /etc/resolv.conf: its content,
// mode and modification time.
func hostResolvConf(t *testing.T) string {
	t.Helper()
	fi, err := os.Lstat("/etc/resolv.conf")
	if err != nil {
		return err.Error()
	}
	data, _ := os.ReadFile("/etc/resolv.conf")
	return fmt.Sprintf("%v %v %q", fi.Mode(), fi.ModTime(), data)
}

// checkDNS checks that the file's DNS settings are applied: netextd
// points the client namespace's resolv.conf at the server and the search
// domain.
func (e *env) checkDNS(t *testing.T) {
	got, err := os.ReadFile(e.resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	var servers, search []string
	for line := range strings.SplitSeq(string(got), "\n") {
		switch f := strings.Fields(line); {
		case len(f) > 1 && f[0] == "nameserver":
			servers = append(servers, f[1])
		case len(f) > 1 && f[0] == "search":
			search = append(search, f[1:]...)
		}
	}
	server := serverTunnel4.Addr().String()
	if !slices.Equal(servers, []string{server}) || !slices.Equal(search, []string{"corp.example"}) {
		t.Errorf("the client namespace's resolv.conf while connected:\n%s\nwant nameserver %s and search corp.example", got, server)
	}
}
