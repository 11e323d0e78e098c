package problem

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestString(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{Message: "settings are nil"}, "settings are nil"},
		{Problem{Path: "mtu", Message: "required"}, "mtu: required"},
		{Problem{Value: "x", Message: "bad"}, `"x": bad`},
		{Problem{Path: "dns.servers[0]", Value: "a\"b", Message: "invalid address"}, `dns.servers[0]: "a\"b": invalid address`},
	} {
		if diff := cmp.Diff(tt.p.String(), tt.want); diff != "" {
			t.Errorf("%+v.String() (-got +want):\n%s", tt.p, diff)
		}
	}
}

func TestListJoin(t *testing.T) {
	var l List
	if got := Join(l, "; "); got != "" {
		t.Errorf("Join(empty) = %q, want \"\"", got)
	}
	l.Add("name", "", "required")
	l.Add(Index("appRules", 2), "a b", "contains white space")
	want := List{
		{Path: "name", Message: "required"},
		{Path: "appRules[2]", Value: "a b", Message: "contains white space"},
	}
	if diff := cmp.Diff(l, want); diff != "" {
		t.Errorf("List (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(Join(l, "\n"), "name: required\nappRules[2]: \"a b\": contains white space"); diff != "" {
		t.Errorf("Join (-got +want):\n%s", diff)
	}
}
