package tun

import "testing"

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{KindTUN.String(), "tun"},
		{KindTAP.String(), "tap"},
		{Kind(0).String(), "Kind(0)"},
		{Offloads(0).String(), "none"},
		{OffloadTCP.String(), "tcp"},
		{(OffloadTCP | OffloadUDP).String(), "tcp,udp"},
		{(OffloadUDP | 0x80).String(), "udp,0x80"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{Name: "nx%d"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != KindTUN || o.Logger == nil || o.Name != "nx%d" || o.DisableOffloads {
		t.Errorf("validate() = %+v, want KindTUN, a logger, the name kept and offloads on", o)
	}
}
