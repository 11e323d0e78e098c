package session

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/testproc"
)

// BenchmarkStartStop measures a whole run with the in-memory device and
// network: launch, hello, start with settings, connected, stop, teardown.
// It reports the time to connected separately.
func BenchmarkStartStop(b *testing.B) {
	uid, gid := testproc.User()
	pc, _ := json.Marshal(map[string]any{"settings": json.RawMessage(settingsA)})
	net, devs := &fakeNetwork{}, &fakeDevices{}
	s, err := New(Config{
		Provider:      Provider{Path: providerPath, UID: uid, GID: gid},
		Configuration: providerproto.Configuration{ProviderConfiguration: pc},
		NewNetwork:    net.factory,
		CreateDevice:  devs.create,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var connect time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := s.Start(ctx, nil); err != nil {
			b.Fatal(err)
		}
		connect += time.Since(t0)
		if err := s.Stop(ctx, providerproto.StopUserInitiated); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(connect.Microseconds())/float64(b.N)/1000, "ms/connect")
}
