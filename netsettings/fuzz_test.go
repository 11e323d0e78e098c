package netsettings

import (
	"os"
	"testing"
)

// FuzzDecode checks that Decode and Validate never panic, that every
// decoded document survives Encode and Decode unchanged, and that Decode
// returns settings exactly when it returns no error.
//
// Seeds: the golden file, the round-trip and decode-error tables, and a few
// Apple-style documents.
func FuzzDecode(f *testing.F) {
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	for _, tt := range roundTripTests {
		b, err := tt.s.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tt := range decodeErrorTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte(`{"tunnelRemoteAddress":"192.0.2.1","ipv4":{"addresses":["10.8.0.2"],"subnetMasks":["255.255.255.0"]},"ipv6":{"addresses":["fd00::2"],"networkPrefixLengths":[64]}}`))
	f.Add([]byte(`{"dns":{"servers":["[fd00::1]:53","10.0.0.1:853"],"matchDomains":[""]}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if (s == nil) == (err == nil) {
			t.Fatalf("Decode returned settings %v and error %v", s, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		verr := s.Validate()
		_ = s.String()

		b, err := s.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(s)): %v\n%s", err, b)
		}
		if !again.Equal(s) {
			t.Fatalf("round trip changed the settings:\n%v\n%v", s, again)
		}
		if (again.Validate() == nil) != (verr == nil) {
			t.Fatalf("validity changed in the round trip: %v", verr)
		}
		if c := s.Clone(); !c.Equal(s) {
			t.Fatalf("Clone differs: %v", c)
		}
	})
}
