package provider_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the SDK free of the daemon: a provider links the standard
// library, x/sys, the settings model (with its problem reports), the tun
// package (with the parts of wireguard-go it builds on) and the protocol,
// and nothing else.
func TestDeps(t *testing.T) {
	const module = "github.com/netext/netext/"
	allowed := []string{
		module + "provider",
		module + "netsettings",
		module + "internal/problem", // the settings model's problem reports
		module + "internal/dnsname", // the settings model's domain name rule
		module + "tun",
		module + "internal/providerproto",
		"golang.org/x/sys/",
		// Brought by wireguard-go's tun package.
		"golang.zx2c4.com/wireguard/tun",
		"golang.zx2c4.com/wireguard/conn",
		"golang.zx2c4.com/wireguard/rwcancel",
		"golang.org/x/net/",
	}
	forbidden := []string{
		module + "netcfg", module + "session", module + "supervisor",
		"github.com/vishvananda/", "github.com/google/nftables", "github.com/godbus/", "github.com/mdlayher/",
	}
	for _, goos := range []string{"linux", "darwin"} {
		for _, pkg := range []string{module + "provider", module + "provider/providertest"} {
			cmd := exec.Command("go", "list", "-deps", pkg)
			cmd.Env = append(cmd.Environ(), "GOOS="+goos)
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, f := range forbidden {
					if strings.HasPrefix(dep, f) {
						t.Errorf("GOOS=%s %s depends on %s", goos, pkg, dep)
					}
				}
				if pkg != module+"provider" || isStd(dep) || hasAnyPrefix(dep, allowed) {
					continue
				}
				t.Errorf("GOOS=%s %s depends on %s, which is not on the SDK's list", goos, pkg, dep)
			}
		}
	}
}

// isStd reports whether a package path belongs to the standard library:
// its first element has no dot.
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
