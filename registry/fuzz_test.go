package registry

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeManifest checks that decodeManifest never panics, that every
// problem has a message, and that an accepted manifest survives encoding
// and decoding unchanged.
func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`{"id":"a.b","executable":"/x","user":"1000","kind":"ethernet"}`))
	f.Add([]byte(`{"id":"a.b","executable":"/x","user":"0","kind":"tun","extra":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ps := decodeManifest(data)
		for _, p := range ps {
			if p.msg == "" {
				t.Fatalf("empty problem message for field %q", p.field)
			}
		}
		if len(ps) > 0 {
			return
		}
		if CheckID(m.ID) != nil || m.Executable == "" || m.Executable[0] != '/' || m.User == "" || m.User == "0" || m.User == "root" || (m.Kind != KindPacket && m.Kind != KindEthernet) {
			t.Fatalf("accepted a bad manifest: %+v", m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, ps := decodeManifest(b)
		if len(ps) != 0 || back != m {
			t.Fatalf("round trip: %+v %v, want %+v", back, ps, m)
		}
	})
}
