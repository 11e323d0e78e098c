package sample

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testKey(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// testSessions returns the client and server ends of one session.
func testSessions(t testing.TB, k Key) (client, server *session) {
	t.Helper()
	a := ack{}
	copy(a.clientRandom[:], "client random, 32 bytes long....")
	copy(a.serverRandom[:], "server random, 32 bytes long....")
	return newSession(&k, a, true), newSession(&k, a, false)
}

// sealed returns a data message carrying pkt with the given counter.
func sealed(s *session, counter uint64, pkt []byte) []byte {
	buf := make([]byte, HeaderLen+len(pkt)+TagLen)
	copy(buf[HeaderLen:], pkt)
	var sl sealer
	return sl.seal(s, counter, buf, len(pkt))
}

func TestSealOpen(t *testing.T) {
	pkt := []byte("an IP packet, more or less")
	client, server := testSessions(t, testKey(1))
	_, otherServer := testSessions(t, testKey(2))

	tests := []struct {
		name string
		// msg returns the message to open; recv is the session opening it.
		msg  func() []byte
		recv *session
		want error
	}{
		{"valid", func() []byte { return sealed(client, 0, pkt) }, server, nil},
		{"empty packet (keepalive)", func() []byte { return sealed(client, 0, nil) }, server, nil},
		{"wrong key", func() []byte { return sealed(client, 0, pkt) }, otherServer, errAuth},
		{"reflected to its sender", func() []byte { return sealed(client, 0, pkt) }, client, errAuth},
		{"tampered payload", func() []byte {
			m := sealed(client, 0, pkt)
			m[HeaderLen+3] ^= 1
			return m
		}, server, errAuth},
		{"tampered tag", func() []byte {
			m := sealed(client, 0, pkt)
			m[len(m)-1] ^= 0x80
			return m
		}, server, errAuth},
		{"tampered counter", func() []byte {
			m := sealed(client, 0, pkt)
			m[4] = 1
			return m
		}, server, errAuth},
		{"truncated", func() []byte { return sealed(client, 0, pkt)[:Overhead-1] }, server, errMalformed},
		{"wrong type", func() []byte {
			m := sealed(client, 0, pkt)
			m[0] = typeHello
			return m
		}, server, errMalformed},
		{"reserved bytes set", func() []byte {
			m := sealed(client, 0, pkt)
			m[2] = 1
			return m
		}, server, errMalformed},
		{"counter at the limit", func() []byte { return sealed(client, rejectAfter, pkt) }, server, errReplay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client.replay.Reset()
			server.replay.Reset()
			otherServer.replay.Reset()
			msg := tt.msg()
			var op opener
			got, err := op.open(tt.recv, nil, msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("open: err = %v, want %v", err, tt.want)
			}
			if err == nil && !bytes.Equal(got, pkt) && len(got) != 0 {
				t.Errorf("open = %q, want %q", got, pkt)
			}
		})
	}
}

// TestReplayWindow opens a sequence of counters on one session and checks
// which are accepted.
func TestReplayWindow(t *testing.T) {
	const window = 8128 // wireguard-go's replay.Filter: (128-1)*64
	tests := []struct {
		name     string
		counters []uint64
		want     []bool
	}{
		{"in order", []uint64{0, 1, 2, 3}, []bool{true, true, true, true}},
		{"replayed", []uint64{0, 1, 1, 0}, []bool{true, true, false, false}},
		{"reordered within window", []uint64{5, 3, 4, 0, 1, 2}, []bool{true, true, true, true, true, true}},
		{"reordered, then replayed", []uint64{9, 2, 9, 2}, []bool{true, true, false, false}},
		{"far ahead, then in window", []uint64{window + 100, 101, 99}, []bool{true, true, false}},
		{"too old", []uint64{0, 3 * window, 5}, []bool{true, true, false}},
		{"first packet late", []uint64{1000, 0}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := testSessions(t, testKey(7))
			var op opener
			var got []bool
			for _, c := range tt.counters {
				_, err := op.open(server, nil, sealed(client, c, []byte{0x45}))
				if err != nil && !errors.Is(err, errReplay) {
					t.Fatalf("counter %d: %v", c, err)
				}
				got = append(got, err == nil)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("accepted (-got +want):\n%s", diff)
			}
		})
	}
}

// A forged message must not move the replay window: after garbage with a
// huge counter, genuine packets still get through.
func TestForgeryDoesNotMoveWindow(t *testing.T) {
	client, server := testSessions(t, testKey(3))
	forged := sealed(client, 0, []byte("x"))
	forged[4], forged[11] = 0xff, 0x0f // counter changed, tag now wrong
	var op opener
	if _, err := op.open(server, nil, forged); !errors.Is(err, errAuth) {
		t.Fatalf("forged message: %v, want errAuth", err)
	}
	if _, err := op.open(server, nil, sealed(client, 1, []byte("y"))); err != nil {
		t.Fatalf("genuine message after forgery: %v", err)
	}
}

func TestHandshake(t *testing.T) {
	k := testKey(9)
	hs := newHandshakeAEADs(&k)
	other := testKey(10)
	hsOther := newHandshakeAEADs(&other)
	h := hello{timestamp: 1234567890}
	copy(h.clientRandom[:], "0123456789abcdef0123456789abcdef")

	msg := hs.sealHello(h)
	if len(msg) != helloLen {
		t.Fatalf("hello is %d bytes, want %d", len(msg), helloLen)
	}
	if got, ok := hs.openHello(msg); !ok || got != h {
		t.Errorf("openHello = %+v, %v; want %+v, true", got, ok, h)
	}
	if _, ok := hsOther.openHello(msg); ok {
		t.Error("hello opened with another key")
	}
	if _, ok := hs.openAck(msg); ok {
		t.Error("hello opened as an ack")
	}
	tampered := bytes.Clone(msg)
	tampered[40] ^= 1
	if _, ok := hs.openHello(tampered); ok {
		t.Error("tampered hello opened")
	}

	a := ack{clientRandom: h.clientRandom}
	copy(a.serverRandom[:], "fedcba9876543210fedcba9876543210")
	am := hs.sealAck(a)
	if len(am) != ackLen {
		t.Fatalf("ack is %d bytes, want %d", len(am), ackLen)
	}
	if got, ok := hs.openAck(am); !ok || got != a {
		t.Errorf("openAck = %+v, %v; want %+v, true", got, ok, a)
	}
	if _, ok := hs.openHello(am); ok {
		t.Error("ack opened as a hello")
	}
	if _, ok := hsOther.openAck(am); ok {
		t.Error("ack opened with another key")
	}
}

func TestParseKey(t *testing.T) {
	k := testKey(42)
	got, err := ParseKey(" " + k.Base64() + "\n")
	if err != nil || got != k {
		t.Errorf("ParseKey(Base64) = %v, %v", got.Base64(), err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA", Key{}.Base64()} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
	if s := k.String() + " " + k.GoString(); bytes.Contains([]byte(s), []byte(k.Base64())) {
		t.Errorf("String/GoString show the key: %s", s)
	}
}

// FuzzOpen feeds arbitrary datagrams to the decoders: they must never
// panic, and nothing but a genuine message may authenticate.
func FuzzOpen(f *testing.F) {
	k := testKey(5)
	client, server := testSessions(f, k)
	hs := newHandshakeAEADs(&k)
	f.Add(sealed(client, 0, []byte("packet")))
	f.Add(sealed(client, 1<<40, nil))
	f.Add(hs.sealHello(hello{timestamp: 1}))
	f.Add(hs.sealAck(ack{}))
	f.Add([]byte{})
	f.Add([]byte{typeData, 0, 0, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		server.replay.Reset()
		var op opener
		dst := make([]byte, 0, len(msg))
		if pt, err := op.open(server, dst, msg); err == nil && len(pt) != len(msg)-Overhead {
			t.Errorf("open returned %d bytes for a %d-byte message", len(pt), len(msg))
		}
		hs.openHello(msg)
		hs.openAck(msg)
	})
}

// The sizes the package documentation gives.
func TestMessageSizes(t *testing.T) {
	if helloLen != 84 || ackLen != 108 || Overhead != 28 {
		t.Errorf("hello %d, ack %d, overhead %d bytes; the documentation says 84, 108, 28", helloLen, ackLen, Overhead)
	}
}
