package dnsname

import "testing"

func TestWithin(t *testing.T) {
	for _, tt := range []struct {
		name, domain string
		want         bool
	}{
		{"corp.example", "corp.example", true},
		{"eng.corp.example", "corp.example", true},
		{"corp.example", "eng.corp.example", false},
		{"notcorp.example", "corp.example", false},
		{"anything.example", "", true},
		{"", "", true},
		{"", "example", false},
	} {
		if got := Within(tt.name, tt.domain); got != tt.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tt.name, tt.domain, got, tt.want)
		}
	}
}
