package netsettings

import (
	"bytes"
	"encoding/json"
	"testing"
)

// checkScan compares scanObject and scanArray with encoding/json on the valid
// JSON value data, recursively.
func checkScan(t *testing.T, data []byte) {
	t.Helper()
	switch kind(data) {
	case "object":
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got := make(map[string]json.RawMessage)
		for k, v := range scanObject(data) {
			var name string
			if err := json.Unmarshal(k, &name); err != nil {
				t.Fatalf("scanObject key %q: %v", k, err)
			}
			got[name] = v // the last of repeated keys wins, as in encoding/json
		}
		if len(got) != len(want) {
			t.Fatalf("scanObject found %d members, encoding/json %d, in %s", len(got), len(want), data)
		}
		for k, w := range want {
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(w)) {
				t.Fatalf("member %q: scanObject %s, encoding/json %s", k, got[k], w)
			}
			checkScan(t, got[k])
		}
	case "array":
		var want []json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		i := 0
		for e := range scanArray(data) {
			if i >= len(want) || !bytes.Equal(e, bytes.TrimSpace(want[i])) {
				t.Fatalf("element %d: scanArray %s, in %s", i, e, data)
			}
			checkScan(t, e)
			i++
		}
		if i != len(want) {
			t.Fatalf("scanArray found %d elements, encoding/json %d, in %s", i, len(want), data)
		}
	}
}

func TestScan(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, ` { } `, `[ ]`,
		`{"a":1,"b":[1,2,{"c":"]}"}],"d":{"e":null}}`,
		"{\n\t\"k\\\"ey\" : \"v\\\\\" , \"x\":-1.5e3 ,\"y\":true}",
		`[1, "two", [3], {"four": 4}, null, false, "\"]\\"]`,
		`{"a":{"b":{"c":[[[]]]}}, "z": "\u00e9"}`,
	} {
		if !json.Valid([]byte(in)) {
			t.Fatalf("test input %s is not JSON", in)
		}
		checkScan(t, []byte(in))
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"c\""}],"d":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if json.Valid(data) {
			checkScan(t, bytes.TrimSpace(data))
		}
	})
}
