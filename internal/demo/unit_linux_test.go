package demo

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRedactKeys(t *testing.T) {
	in := "[Interface]\nPrivateKey = 6j1vW3YFIMAhRLAJntOxZBdxEvLRMMn4pTQvRlYQGZg=\nAddress = 10.0.0.2/32\n\n[Peer]\nPublicKey = AmBnYxMszI4Jqe9VQDlUWiW55tg97Y+Z3jhbqrTeSlw=\nPresharedKey = 7LqVRRgErorjiuW/doY6sLnfI0bD9eeSJcR89SYZ1aE=\n"
	want := "[Interface]\nPrivateKey = (made for this run; netextd keeps it in its secret store)\nAddress = 10.0.0.2/32\n\n[Peer]\nPublicKey = AmBnYxMszI4Jqe9VQDlUWiW55tg97Y+Z3jhbqrTeSlw=\nPresharedKey = (made for this run; netextd keeps it in its secret store)\n"
	if diff := cmp.Diff(redactKeys(in), want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

func TestServerUAPI(t *testing.T) {
	c := serverConfig{
		PrivateKey:   "6j1vW3YFIMAhRLAJntOxZBdxEvLRMMn4pTQvRlYQGZg=",
		PeerKey:      "AmBnYxMszI4Jqe9VQDlUWiW55tg97Y+Z3jhbqrTeSlw=",
		PresharedKey: "7LqVRRgErorjiuW/doY6sLnfI0bD9eeSJcR89SYZ1aE=",
		ListenPort:   51820,
		AllowedIPs:   []string{"10.201.0.2/32", "fd00:201::2/128"},
	}
	got, err := c.uapi()
	if err != nil {
		t.Fatal(err)
	}
	want := "private_key=ea3d6f5b760520c02144b0099ed3b164177112f2d130c9f8a5342f4656101998\n" +
		"listen_port=51820\n" +
		"public_key=02606763132ccc8e09a9ef554039545a25b9e6d83ded8f99de385baab4de4a5c\n" +
		"preshared_key=ecba95451804ae8ae38ae5bf76863ab0b9df2346c3f5e79225c47cf52619d5a1\n" +
		"allowed_ip=10.201.0.2/32\nallowed_ip=fd00:201::2/128\n"
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	c.PeerKey = "short"
	if _, err := c.uapi(); err == nil || !strings.Contains(err.Error(), "public_key") || strings.Contains(err.Error(), "short") {
		t.Errorf("bad key: %v, want an error naming public_key without the value", err)
	}
}

func TestRate(t *testing.T) {
	for _, tt := range []struct {
		r    rate
		want string
	}{
		{rate{250 << 20, 2 * time.Second}, "1.05 Gbit/s (250 MiB in 2.0s)"},
		{rate{10 << 20, 2 * time.Second}, "42 Mbit/s (10 MiB in 2.0s)"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}
