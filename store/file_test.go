package store

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const goldenPath = "testdata/office-1.json"

// TestFileGolden pins the file format: field names and order, indentation,
// the schema version first and hasSecret left out.
func TestFileGolden(t *testing.T) {
	c := full()
	c.normalize()
	c.Generation = 7
	c.HasSecret = true
	c.CreatedAt = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	c.ModifiedAt = time.Date(2026, 1, 5, 8, 30, 0, 123000000, time.UTC)
	got, err := encodeFile(c)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(got), string(want)); diff != "" {
		t.Errorf("encodeFile (-got +want):\n%s", diff)
	}
	if strings.Contains(string(got), "hasSecret") {
		t.Error("the file mentions hasSecret")
	}

	back, err := decodeFile(want, "office-1", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	c.HasSecret = false
	if !back.Equal(c) {
		t.Errorf("decodeFile(encodeFile(c)) differs:\n%s", cmp.Diff(back, c))
	}
}

// TestRoundTripEveryField checks that every field survives the file, also
// when set to a value other than its zero, and that Equal notices a change
// to any one of them.
func TestRoundTripEveryField(t *testing.T) {
	base := full()
	base.normalize()
	base.Generation = 2
	base.CreatedAt = time.Date(2026, 1, 2, 10, 0, 0, 1, time.UTC)
	base.ModifiedAt = base.CreatedAt.Add(time.Hour)
	b, err := encodeFile(base)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeFile(b, base.Name, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(back, base); diff != "" {
		t.Errorf("round trip (-got +want):\n%s", diff)
	}

	mutations := map[string]func(*Configuration){
		"description":           func(c *Configuration) { c.Description = "x" },
		"providerID":            func(c *Configuration) { c.ProviderID = "org.example.other" },
		"serverAddress":         func(c *Configuration) { c.ServerAddress = "192.0.2.1" },
		"username":              func(c *Configuration) { c.Username = "bob" },
		"providerConfiguration": func(c *Configuration) { c.ProviderConfiguration = []byte(`{"mtu":1280}`) },
		"enabled":               func(c *Configuration) { c.Enabled = false },
		"onDemand.enabled":      func(c *Configuration) { c.OnDemand.Enabled = false },
		"onDemand.rules":        func(c *Configuration) { c.OnDemand.Rules[1].ConnectionRules[0].ProbeURL = "" },
		"includeAllNetworks":    func(c *Configuration) { c.IncludeAllNetworks = false },
		"excludeLocalNetworks":  func(c *Configuration) { c.ExcludeLocalNetworks = false },
		"enforceRoutes":         func(c *Configuration) { c.EnforceRoutes = false },
		"disconnectOnSleep":     func(c *Configuration) { c.DisconnectOnSleep = false },
		"routingMethod":         func(c *Configuration) { c.RoutingMethod = RoutingDestinationIP; c.AppRules = nil },
		"appRules":              func(c *Configuration) { c.AppRules[2].SystemdUnit = "other.service" },
		"generation":            func(c *Configuration) { c.Generation++ },
		"createdAt":             func(c *Configuration) { c.CreatedAt = c.CreatedAt.Add(1) },
		"modifiedAt":            func(c *Configuration) { c.ModifiedAt = c.ModifiedAt.Add(1) },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			c := base.Clone()
			mutate(&c)
			if c.Equal(base) {
				t.Fatal("Equal does not see the change")
			}
			b, err := encodeFile(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeFile(b, c.Name, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(c) {
				t.Errorf("round trip (-got +want):\n%s", cmp.Diff(back, c))
			}
		})
	}
	if diff := cmp.Diff(base, func() Configuration {
		c := full()
		c.normalize()
		c.Generation, c.CreatedAt, c.ModifiedAt = base.Generation, base.CreatedAt, base.ModifiedAt
		return c
	}()); diff != "" {
		t.Errorf("mutations changed base through shared slices (-got +want):\n%s", diff)
	}
}

func TestEqualNormalForms(t *testing.T) {
	a := minimal("a")
	b := minimal("a")
	b.RoutingMethod = RoutingDestinationIP
	b.ProviderConfiguration = []byte("null")
	b.AppRules = []AppRule{}
	b.OnDemand.Rules = []OnDemandRule{}
	if !a.Equal(b) {
		t.Error("nil and empty, \"\" and destinationIP, nil and null should be equal")
	}
	a.ProviderConfiguration = []byte(`{ "a" : 1 }`)
	b.ProviderConfiguration = []byte(`{"a":1}`)
	if !a.Equal(b) {
		t.Error("provider configurations differing in white space should be equal")
	}
}

func TestDecodeFileErrors(t *testing.T) {
	valid := `"name":"n","providerID":"org.example.a"`
	for _, tt := range []struct {
		name, in, want string
	}{
		{"empty", ``, "invalid JSON: the file is empty or cut short"},
		{"cut short", "{\"schemaVersion\": 1, \"name\": \"n\"\n", "invalid JSON: the file is empty or cut short"},
		{"syntax", "{\n  \"schemaVersion\": 1,\n  \"name\": \"n\",,\n}", "invalid JSON at line 3, column 15: invalid character ',' looking for beginning of object key string"},
		{"not an object", `[1]`, "the file must hold a JSON object, not array"},
		{"no schema version", `{` + valid + `}`, "schemaVersion is missing or 0 (want 1)"},
		{"newer schema", `{"schemaVersion":2,` + valid + `,"futureField":1}`, "schemaVersion 2 is newer than this netext understands (it reads 1): the file was written by a newer netext"},
		{"unknown schema", `{"schemaVersion":-1,` + valid + `}`, "unknown schemaVersion -1 (want 1)"},
		{"schema not a number", `{"schemaVersion":"1",` + valid + `}`, `schemaVersion: "1": not an integer`},
		{"unknown field", `{"schemaVersion":1,` + valid + `,"pasword":"x"}`, `unknown field "pasword"`},
		{"unknown nested field", `{"schemaVersion":1,` + valid + `,"onDemand":{"enabled":false,"rulez":[]}}`, `unknown field "rulez"`},
		{"wrong type", `{"schemaVersion":1,` + valid + `,"enabled":"yes"}`, `enabled: string is not a valid boolean`},
		{"wrong nested type", `{"schemaVersion":1,` + valid + `,"onDemand":{"rules":[{"action":"connect","ssidMatch":"x"}]}}`, `onDemand.rules.ssidMatch: string is not a valid list`},
		{"negative generation", `{"schemaVersion":1,` + valid + `,"generation":-1}`, `generation: number -1 is not a valid number of this range`},
		{"hasSecret stored", `{"schemaVersion":1,` + valid + `,"hasSecret":false}`, `hasSecret: not stored in the file (the store derives it from the secret file); remove it`},
		{"name mismatch", `{"schemaVersion":1,"name":"other","providerID":"org.example.a"}`, `name: "other" does not match the file name n.json`},
		{"trailing data", `{"schemaVersion":1,` + valid + `} {}`, "invalid JSON at line 1, column 61: invalid character '{' after top-level value"},
		{"invalid", `{"schemaVersion":1,` + valid + `,"routingMethod":"byMagic"}`, `invalid configuration: routingMethod: "byMagic": must be "destinationIP" or "sourceApplication"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeFile([]byte(tt.in), "n", time.Time{})
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(err.Error(), tt.want); diff != "" {
				t.Errorf("error (-got +want):\n%s", diff)
			}
		})
	}

	_, err := decodeFile([]byte(`{"schemaVersion":3}`), "n", time.Time{})
	var verr *SchemaVersionError
	if !errors.As(err, &verr) || verr.Version != 3 {
		t.Errorf("newer schema: got %v, want a *SchemaVersionError for version 3", err)
	}
}

// TestDecodeHandWritten checks the defaults for a file written by hand.
func TestDecodeHandWritten(t *testing.T) {
	mod := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	c, err := decodeFile([]byte(`{"schemaVersion": 1, "name": "n", "providerID": "org.example.a", "providerConfiguration": {
		"key":   "value"
	}}`), "n", mod)
	if err != nil {
		t.Fatal(err)
	}
	want := minimal("n")
	want.ProviderID = "org.example.a"
	want.ProviderConfiguration = []byte(`{"key":"value"}`)
	want.RoutingMethod = RoutingDestinationIP
	want.Generation = 1
	want.CreatedAt, want.ModifiedAt = mod, mod
	if diff := cmp.Diff(c, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}
