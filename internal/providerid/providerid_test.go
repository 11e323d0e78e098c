package providerid

import (
	"strings"
	"testing"
)

func TestProblem(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want string
	}{
		{"a.b", ""},
		{"org.example.wireguard", ""},
		{"0.1", ""},
		{"com.example-vpn.x", ""},
		{"a." + strings.Repeat("b", 63), ""},
		{"", "must be a reverse-DNS name such as org.example.wireguard"},
		{"a", "must be a reverse-DNS name such as org.example.wireguard"},
		{".a", "has an empty label (two dots in a row, or a dot at an end)"},
		{"a.", "has an empty label (two dots in a row, or a dot at an end)"},
		{"a..b", "has an empty label (two dots in a row, or a dot at an end)"},
		{"a.-b", `label "-b" starts or ends with '-'`},
		{"a.b-", `label "b-" starts or ends with '-'`},
		{"a.b_c", `label "b_c" contains '_'; use letters, digits and '-'`},
		{"a.b c", `label "b c" contains ' '; use letters, digits and '-'`},
		{"a/b.c", `label "a/b" contains '/'; use letters, digits and '-'`},
		{"ä.b", `label "ä" contains 'Ã'; use letters, digits and '-'`},
		{strings.Repeat("a.", 128) + "a", "too long (at most 255 characters)"},
		{"a." + strings.Repeat("b", 64), `label "` + strings.Repeat("b", 64) + `" is longer than 63 characters`},
	} {
		if got := Problem(tt.id); got != tt.want {
			t.Errorf("Problem(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestLabelProblemUnderscore(t *testing.T) {
	if got := LabelProblem("_sip", true); got != "" {
		t.Errorf(`LabelProblem("_sip", true) = %q, want ""`, got)
	}
	want := `label "_sip" contains '_'; use letters, digits and '-'`
	if got := LabelProblem("_sip", false); got != want {
		t.Errorf(`LabelProblem("_sip", false) = %q, want %q`, got, want)
	}
}
