package providerproto

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func benchPair(b *testing.B) (d, p *Conn) {
	b.Helper()
	df, pf, err := Socketpair()
	if err != nil {
		b.Fatal(err)
	}
	echo := func(in *Incoming) { in.Reply(in.Body) }
	d, err = New(df, Config{Role: RoleDaemon, Handler: echo})
	if err != nil {
		b.Fatal(err)
	}
	p, err = New(pf, Config{Role: RoleProvider, Handler: echo})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close(); p.Close(); <-d.Done(); <-p.Done() })
	if _, err := p.Hello(context.Background(), Hello{}); err != nil {
		b.Fatal(err)
	}
	return d, p
}

// BenchmarkRequest measures one small request and its reply.
func BenchmarkRequest(b *testing.B) {
	_, p := benchPair(b)
	ctx := context.Background()
	body := json.RawMessage(`{"settings":null}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Request(ctx, TypeSetSettings, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestLarge measures a request of nearly MaxMessageSize, cut
// into datagrams both ways.
func BenchmarkRequestLarge(b *testing.B) {
	_, p := benchPair(b)
	ctx := context.Background()
	body := json.RawMessage(`{"settings":{"s":"` + strings.Repeat("a", MaxMessageSize-100) + `"}}`)
	b.SetBytes(int64(2 * len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Request(ctx, TypeSetSettings, body); err != nil {
			b.Fatal(err)
		}
	}
}
