package store

import (
	"os"
	"testing"
	"time"
)

// FuzzDecodeFile checks that decodeFile never panics, that whatever it
// accepts is valid and survives encodeFile and decodeFile unchanged, and
// that its errors are never empty.
func FuzzDecodeFile(f *testing.F) {
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden, "office-1")
	f.Add([]byte(`{"schemaVersion":1,"name":"n","providerID":"org.example.a"}`), "n")
	f.Add([]byte(`{"schemaVersion":1,"name":"n","providerID":"org.example.a","providerConfiguration":null,"routingMethod":""}`), "n")
	f.Add([]byte(`{"schemaVersion":1,"name":"n","providerID":"a.b","onDemand":{"enabled":true,"rules":[{"action":"evaluateConnection","connectionRules":[{"domains":["a.b"],"action":"connectIfNeeded"}]}]}}`), "n")
	f.Add([]byte(`{"schemaVersion":2}`), "n")
	f.Add([]byte(`{"schemaVersion":1,"name":"n","hasSecret":true}`), "n")
	f.Add([]byte(``), "n")
	f.Add([]byte(`[]`), "n")

	mod := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		c, err := decodeFile(data, name, mod)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded an invalid configuration: %v", err)
		}
		if c.Name != name || c.Generation == 0 || c.HasSecret {
			t.Fatalf("decoded name %q generation %d hasSecret %v", c.Name, c.Generation, c.HasSecret)
		}
		b, err := encodeFile(c)
		if err != nil {
			t.Fatalf("encodeFile: %v", err)
		}
		back, err := decodeFile(b, name, time.Time{})
		if err != nil {
			t.Fatalf("decodeFile(encodeFile(c)): %v\n%s", err, b)
		}
		if !back.Equal(c) {
			t.Fatalf("round trip changed the configuration:\n%s", b)
		}
	})
}
