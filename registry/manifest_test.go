package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const goodManifest = `{
  "id": "org.example.wireguard",
  "description": "WireGuard",
  "executable": "/usr/lib/netext/netext-provider-wireguard",
  "user": "netext-provider",
  "kind": "packet"
}`

func TestDecodeManifest(t *testing.T) {
	m, ps := decodeManifest([]byte(goodManifest))
	if len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	want := manifest{ID: "org.example.wireguard", Description: "WireGuard", Executable: "/usr/lib/netext/netext-provider-wireguard", User: "netext-provider", Kind: KindPacket}
	if diff := cmp.Diff(m, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if _, ps := decodeManifest([]byte(`{"id":"a.b","executable":"/x","user":"1000","kind":"ethernet"}`)); len(ps) != 0 {
		t.Errorf("no description, numeric user, ethernet: %v", ps)
	}
}

func TestDecodeManifestBad(t *testing.T) {
	const rest = `"executable":"/x","user":"u","kind":"packet"`
	for _, tt := range []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{`: invalid JSON: the file is empty or cut short`}},
		{"syntax", "{\n\"id\": \"a.b\",\n}", []string{`: invalid JSON at line 3, column 1: invalid character '}' looking for beginning of object key string`}},
		{"array", `[]`, []string{`: the file must hold a JSON object, not array`}},
		{"unknown field", `{"id":"a.b",` + rest + `,"args":["-v"]}`, []string{`: unknown field "args"`}},
		{"wrong type", `{"id":1,` + rest + `}`, []string{`: id: must be a string, not number`}},
		{"trailing", `{"id":"a.b",` + rest + `}{}`, []string{`: more data after the JSON object`}},
		{"all missing", `{}`, []string{
			`id: required: a reverse-DNS name such as org.example.wireguard`,
			`executable: required: the absolute path of the provider's program`,
			`user: required: the unprivileged user (name or uid) the provider runs as`,
			`kind: required: "packet" or "ethernet"`,
		}},
		{"id one label", `{"id":"wireguard",` + rest + `}`, []string{`id: "wireguard": must be a reverse-DNS name such as org.example.wireguard`}},
		{"id empty label", `{"id":"org.",` + rest + `}`, []string{`id: "org.": has an empty label (two dots in a row, or a dot at an end)`}},
		{"id underscore", `{"id":"org.my_vpn",` + rest + `}`, []string{`id: "org.my_vpn": label "my_vpn" contains '_'; use letters, digits and '-'`}},
		{"id dash", `{"id":"org.-vpn",` + rest + `}`, []string{`id: "org.-vpn": label "-vpn" starts or ends with '-'`}},
		{"id long label", `{"id":"org.` + strings.Repeat("a", 64) + `",` + rest + `}`, []string{`id: "org.` + strings.Repeat("a", 64) + `": label "` + strings.Repeat("a", 64) + `" is longer than 63 characters`}},
		{"relative executable", `{"id":"a.b","executable":"bin/x","user":"u","kind":"packet"}`, []string{`executable: "bin/x": must be an absolute path`}},
		{"unclean executable", `{"id":"a.b","executable":"/usr/lib/../bin/x","user":"u","kind":"packet"}`, []string{`executable: "/usr/lib/../bin/x": must be a clean path (/usr/bin/x)`}},
		{"root user", `{"id":"a.b","executable":"/x","user":"root","kind":"packet"}`, []string{`user: "root": providers must run as an unprivileged user, not root`}},
		{"uid 0", `{"id":"a.b","executable":"/x","user":"0","kind":"packet"}`, []string{`user: "0": uid 0 is root; providers must run as an unprivileged user`}},
		{"bad user", `{"id":"a.b","executable":"/x","user":"a b","kind":"packet"}`, []string{`user: "a b": not a user name or a numeric uid`}},
		{"bad kind", `{"id":"a.b","executable":"/x","user":"u","kind":"tun"}`, []string{`kind: "tun": must be "packet" or "ethernet"`}},
		{"control in description", `{"id":"a.b","description":"a\nb",` + rest + `}`, []string{`description: at most 1024 bytes without control characters`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ps := decodeManifest([]byte(tt.in))
			var got []string
			for _, p := range ps {
				got = append(got, p.field+": "+p.msg)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("problems (-got +want):\n%s", diff)
			}
		})
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a.b", "org.example.wireguard", "com.example-vpn.tunnel2", "0.1"} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a", ".a", "a.", "a..b", "a.b-", "a.b c", "a/b.c", strings.Repeat("a.", 128) + "a"} {
		if err := CheckID(id); err == nil {
			t.Errorf("CheckID(%q) = nil, want an error", id)
		}
	}
}

func TestEmptyRegistry(t *testing.T) {
	var r *Registry
	if _, err := r.Get("a.b"); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("nil Registry Get: %v", err)
	}
	if r.List() != nil || r.Problems() != nil {
		t.Error("nil Registry is not empty")
	}
	var z Registry
	if _, err := z.Get("a.b"); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("zero Registry Get: %v", err)
	}
	if len(z.List()) != 0 {
		t.Error("zero Registry is not empty")
	}
}

func TestLoadMissingAndRelative(t *testing.T) {
	r, err := Load("/nonexistent/netext/providers.d")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.List()) != 0 || len(r.Problems()) != 0 {
		t.Errorf("missing directory: %v %v", r.List(), r.Problems())
	}
	_, err = r.Get("a.b")
	if want := `provider "a.b": provider not installed (no manifest for it in /nonexistent/netext/providers.d)`; err == nil || err.Error() != want {
		t.Errorf("Get: %v, want %q", err, want)
	}
	if _, err := Load("providers.d"); err == nil {
		t.Error("Load of a relative directory succeeded")
	}
}
