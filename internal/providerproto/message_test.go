package providerproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *Message
		wantErr string // substring
	}{
		{name: "request", in: `{"id":7,"type":"start","body":{"options":{}}}`,
			want: &Message{ID: 7, Type: "start", Body: json.RawMessage(`{"options":{}}`)}},
		{name: "notification without id", in: `{"type":"wake"}`, want: &Message{Type: "wake"}},
		{name: "notification with id 0", in: `{"id":0,"type":"wake","body":{}}`, want: &Message{Type: "wake", Body: json.RawMessage(`{}`)}},
		{name: "null body", in: `{"type":"wake","body":null}`, want: &Message{Type: "wake"}},
		{name: "white space", in: " \n{ \"type\" : \"wake\" }\n", want: &Message{Type: "wake"}},
		{name: "id as string", in: `{"id":"1","type":"x"}`, wantErr: "id: \"1\" is not"},
		{name: "field names are case-sensitive", in: `{"ID":1,"Type":"x"}`, wantErr: "type: missing"},
		{name: "error not an object", in: `{"id":1,"type":"reply","error":"x"}`, wantErr: "error: "},
		{name: "null id and error", in: `{"id":null,"type":"wake","error":null}`, want: &Message{Type: "wake"}},
		{name: "unknown fields ignored", in: `{"type":"wake","future":[1,2]}`, want: &Message{Type: "wake"}},
		{name: "reply with body", in: `{"id":1,"type":"reply","body":{"protocolVersion":1}}`,
			want: &Message{ID: 1, Type: "reply", Body: json.RawMessage(`{"protocolVersion":1}`)}},
		{name: "reply with error", in: `{"id":2,"type":"reply","error":{"code":"invalid","message":"mtu"}}`,
			want: &Message{ID: 2, Type: "reply", Error: &Error{Code: CodeInvalid, Message: "mtu"}}},
		{name: "largest id", in: `{"id":18446744073709551615,"type":"x"}`, want: &Message{ID: 1<<64 - 1, Type: "x"}},

		{name: "not JSON", in: `hello`, wantErr: "not a JSON object"},
		{name: "array", in: `[{"type":"wake"}]`, wantErr: "not a JSON object"},
		{name: "null", in: `null`, wantErr: "not a JSON object"},
		{name: "empty", in: ``, wantErr: "not a JSON object"},
		{name: "truncated", in: `{"type":"wake"`, wantErr: "decoding message"},
		{name: "trailing data", in: `{"type":"wake"}{}`, wantErr: "decoding message"},
		{name: "missing type", in: `{"id":3}`, wantErr: "type: missing"},
		{name: "type not a string", in: `{"type":5}`, wantErr: "type: 5 is not a string"},
		{name: "negative id", in: `{"id":-1,"type":"x"}`, wantErr: "id: -1 is not an integer"},
		{name: "fractional id", in: `{"id":1.5,"type":"x"}`, wantErr: "id: 1.5 is not"},
		{name: "id too large", in: `{"id":18446744073709551616,"type":"x"}`, wantErr: "id: 18446744073709551616 is not"},
		{name: "reply without id", in: `{"type":"reply"}`, wantErr: "id: a reply needs"},
		{name: "error outside reply", in: `{"id":1,"type":"start","error":{"code":"failed"}}`, wantErr: "error: only replies"},
		{name: "error without code", in: `{"id":1,"type":"reply","error":{"message":"x"}}`, wantErr: "error.code: missing"},
		{name: "body not an object", in: `{"type":"wake","body":[1]}`, wantErr: "body: must be a JSON object"},
		{name: "body a string", in: `{"type":"wake","body":"x"}`, wantErr: "body: must be a JSON object"},
		{name: "invalid UTF-8", in: "{\"type\":\"w\xffake\"}", wantErr: "not valid UTF-8"},
		{name: "too large", in: `{"type":"x","body":{"s":"` + strings.Repeat("a", MaxMessageSize) + `"}}`, wantErr: "MaxMessageSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode(%.60q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Decode(%q) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name    string
		in      *Message
		want    string
		wantErr string
	}{
		{name: "request", in: &Message{ID: 1, Type: "hello", Body: json.RawMessage(`{"a":"<&>"}`)},
			want: `{"id":1,"type":"hello","body":{"a":"<&>"}}`},
		{name: "notification", in: &Message{Type: "wake"}, want: `{"type":"wake"}`},
		{name: "error reply", in: &Message{ID: 4, Type: "reply", Error: &Error{Code: CodeUnsupported}},
			want: `{"id":4,"type":"reply","error":{"code":"unsupported"}}`},
		{name: "body kept as it is", in: &Message{Type: "x", Body: json.RawMessage("{ \"b\" : [1, 2] }\n")}, want: `{"type":"x","body":{ "b" : [1, 2] }}`},
		{name: "body not JSON", in: &Message{Type: "x", Body: json.RawMessage(`{"a":}`)}, wantErr: "not valid JSON"},
		{name: "body not UTF-8", in: &Message{Type: "x", Body: json.RawMessage("{\"a\":\"\xff\"}")}, wantErr: "not valid JSON in UTF-8"},
		{name: "no type", in: &Message{ID: 1}, wantErr: "type: missing"},
		{name: "reply without id", in: &Message{Type: "reply"}, wantErr: "id: a reply needs"},
		{name: "body not object", in: &Message{Type: "x", Body: json.RawMessage(`1`)}, wantErr: "body: must be"},
		{name: "too large", in: &Message{Type: "x", Body: json.RawMessage(`{"s":"` + strings.Repeat("a", MaxMessageSize) + `"}`)},
			wantErr: "exceeds the limit of 16777216 bytes (MaxMessageSize)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Encode = %.60q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(got), tt.want); diff != "" {
				t.Errorf("Encode (-got +want):\n%s", diff)
			}
		})
	}
}

func TestMarshalBody(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    string
		wantErr bool
	}{
		{name: "nil", in: nil, want: ""},
		{name: "nil pointer", in: (*Stop)(nil), want: ""},
		{name: "struct", in: &Stop{Reason: StopSleep}, want: `{"reason":"sleep"}`},
		{name: "map", in: map[string]int{"a": 1}, want: `{"a":1}`},
		{name: "raw", in: json.RawMessage(`{"x":1}`), want: `{"x":1}`},
		{name: "empty raw", in: json.RawMessage(nil), want: ""},
		{name: "null raw", in: json.RawMessage(` null `), want: ""},
		{name: "invalid raw", in: json.RawMessage(`{"x":`), wantErr: true},
		{name: "array raw", in: json.RawMessage(`[]`), wantErr: true},
		{name: "number", in: 5, wantErr: true},
		{name: "string", in: "x", wantErr: true},
		{name: "unencodable", in: map[string]any{"f": func() {}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalBody(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("MarshalBody(%v) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(string(got), tt.want); diff != "" {
				t.Errorf("MarshalBody (-got +want):\n%s", diff)
			}
		})
	}
}

func TestSplitDatagrams(t *testing.T) {
	big := func(fill byte, n int) []byte {
		b := bytes.Repeat([]byte{fill}, n)
		b[0], b[n-1] = '{', '}'
		return b
	}
	plusTail := big('a', 3*MaxDatagramSize)
	for i := len(plusTail) - MaxDatagramSize - 10; i < len(plusTail)-1; i++ {
		plusTail[i] = '+' // every possible start of the last datagram is '+'
	}
	tests := []struct {
		name string
		in   []byte
		n    int // datagrams
	}{
		{name: "small", in: []byte(`{"type":"wake"}`), n: 1},
		{name: "exactly one datagram", in: big('a', MaxDatagramSize), n: 1},
		{name: "one byte more", in: big('a', MaxDatagramSize+1), n: 2},
		{name: "largest message", in: big('a', MaxMessageSize), n: 257}, // 256 pieces of 64 KiB - 1 and the rest
		{name: "last datagram would start with the marker", in: plusTail, n: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := splitDatagrams(tt.in)
			if len(ds) != tt.n {
				t.Errorf("got %d datagrams, want %d", len(ds), tt.n)
			}
			joined := make([]byte, 0, len(tt.in))
			for i, d := range ds {
				if len(d) > MaxDatagramSize {
					t.Errorf("datagram %d has %d bytes, more than %d", i, len(d), MaxDatagramSize)
				}
				last := i == len(ds)-1
				if marked := d[0] == fragmentMarker; marked == last {
					t.Fatalf("datagram %d of %d: starts with the marker: %v", i, len(ds), marked)
				}
				if !last {
					d = d[1:]
				}
				joined = append(joined, d...)
			}
			if !bytes.Equal(joined, tt.in) {
				t.Error("joined datagrams differ from the message")
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		min, max uint32
		want     uint32
		wantErr  string
	}{
		{min: 1, max: 1, want: 1},
		{min: 1, max: 5, want: 1},
		{min: 0, max: 1, want: 1},
		{min: 2, max: 3, wantErr: "no common protocol version: provider speaks 2 to 3, daemon speaks 1 to 1"},
		{min: 3, max: 2, wantErr: "provider speaks 3 to 2"},
		{min: 0, max: 0, wantErr: "provider speaks 0 to 0"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%d", tt.min, tt.max), func(t *testing.T) {
			got, err := Negotiate(tt.min, tt.max)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !IsCode(err, CodeUnsupported) {
					t.Fatalf("Negotiate = %d, %v; want unsupported error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Negotiate = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	e := NewError(CodeInvalid, "mtu: too small")
	wrapped := fmt.Errorf("setSettings: %w", e)
	if !IsCode(wrapped, CodeInvalid) || IsCode(wrapped, CodeFailed) {
		t.Error("IsCode does not see the code through wrapping")
	}
	if !errors.Is(wrapped, &Error{Code: CodeInvalid}) || errors.Is(wrapped, &Error{Code: CodeFailed}) {
		t.Error("errors.Is does not match by code")
	}
	if got, want := e.Error(), "invalid: mtu: too small"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	tests := []struct {
		in   error
		want *Error
	}{
		{nil, nil},
		{wrapped, &Error{Code: CodeInvalid, Message: "mtu: too small"}},
		{fmt.Errorf("applying: %w", context.Canceled), &Error{Code: CodeCanceled, Message: "applying: context canceled"}},
		{errors.New("boom"), &Error{Code: CodeFailed, Message: "boom"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(ToError(tt.in), tt.want); diff != "" {
			t.Errorf("ToError(%v) (-got +want):\n%s", tt.in, diff)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	const secret = "hunter2-very-secret"
	start := Start{Configuration: Configuration{ServerAddress: "vpn.example.com", Username: "ann", Secret: secret,
		ProviderConfiguration: json.RawMessage(`{"key":"` + secret + `"}`)}}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("start", "start", start, "cfg", start.Configuration, "secret", start.Configuration.Secret)
		l.Info("pointer", "start", &start)
	}
	printed := []string{
		logs.String(),
		fmt.Sprint(start), fmt.Sprintf("%+v %#v %s %q %x", start, start, start.Configuration.Secret, start.Configuration.Secret, start.Configuration.Secret),
		start.Configuration.Secret.String(),
	}
	for _, p := range printed {
		if !strings.Contains(p, "[redacted]") {
			t.Errorf("no [redacted] in %q", p)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the secret appears in logs: %s", logs.String())
	}
	if strings.Contains(printed[1], secret[:7]) {
		t.Errorf("the secret appears when printed: %s", printed[1])
	}
	wire, err := MarshalBody(&start)
	if err != nil {
		t.Fatal(err)
	}
	var back Start
	if err := UnmarshalBody(wire, &back); err != nil {
		t.Fatal(err)
	}
	if back.Configuration.Secret.Reveal() != secret {
		t.Errorf("the secret did not survive JSON: %q", back.Configuration.Secret.Reveal())
	}
}

func TestBodiesValidate(t *testing.T) {
	tests := []struct {
		name    string
		v       interface{ Validate() error }
		wantErr string
	}{
		{"hello", &Hello{ProtocolVersion: 1, MinProtocolVersion: 1}, ""},
		{"hello min 0", &Hello{ProtocolVersion: 1}, "minProtocolVersion"},
		{"hello inverted", &Hello{ProtocolVersion: 1, MinProtocolVersion: 2}, "protocolVersion: 1 is below"},
		{"settings object", &SetSettings{Settings: json.RawMessage(`{"mtu":1400}`)}, ""},
		{"settings null", &SetSettings{Settings: json.RawMessage(`null`)}, ""},
		{"settings missing", &SetSettings{}, "settings: missing"},
		{"settings array", &SetSettings{Settings: json.RawMessage(`[]`)}, "settings: must be"},
		{"tunnel", &Tunnel{Name: "netext0", Kind: KindTUN, MTU: 1420, Offloads: Offloads{VnetHdr: true, TCP: true, UDP: true}}, ""},
		{"tunnel no name", &Tunnel{Kind: KindTUN, MTU: 1420}, "tunnel.name"},
		{"tunnel kind", &Tunnel{Name: "a", Kind: "tan", MTU: 1420}, "tunnel.kind"},
		{"tunnel mtu", &Tunnel{Name: "a", Kind: KindTAP, MTU: 20}, "tunnel.mtu"},
		{"tunnel offloads", &Tunnel{Name: "a", Kind: KindTUN, MTU: 1420, Offloads: Offloads{TCP: true}}, "need vnetHdr"},
		{"configuration", &Configuration{ProviderConfiguration: json.RawMessage(`{}`)}, ""},
		{"configuration not object", &Configuration{ProviderConfiguration: json.RawMessage(`"x"`)}, "providerConfiguration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
	if !StopSuperceded.Known() || StopReason("later").Known() || len(StopReasons) != 18 {
		t.Error("stop reasons are off")
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"type":"hello","body":{"protocolVersion":1,"minProtocolVersion":1,"sdk":"netext-go/0.1","pid":42}}`,
		`{"id":1,"type":"reply","body":{"protocolVersion":1}}`,
		`{"id":2,"type":"reply","error":{"code":"invalid","message":"x"}}`,
		`{"type":"path","body":{"status":"satisfied","interface":"eth0"}}`,
		`{"type":"wake","body":null}`,
		`{"id":3,"type":"setSettings","body":{"settings":null}}`,
		`{"ID":3,"TYPE":"x","Body":{"a":[1,2.5e+3,"\u00e9\u2028"]}}`,
		`{"type":"x","type":"y"}`,
		`[]`, `{`, `null`, "{\"type\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		enc, err := Encode(m)
		if err != nil {
			if len(data) > MaxMessageSize/2 { // escaping may grow text near the limit
				return
			}
			t.Fatalf("Encode(Decode(%q)): %v", data, err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %q: %v", data, enc, err)
		}
		enc2, err := Encode(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		// The body may lose insignificant white space; nothing else changes.
		var c1, c2 bytes.Buffer
		if len(m.Body) > 0 {
			if err := json.Compact(&c1, m.Body); err != nil {
				t.Fatalf("decoded body is not JSON: %v", err)
			}
		}
		if len(m2.Body) > 0 {
			_ = json.Compact(&c2, m2.Body)
		}
		m.Body, m2.Body = nil, nil
		if diff := cmp.Diff(m2, m); diff != "" {
			t.Errorf("round trip (-got +want):\n%s", diff)
		}
		if !bytes.Equal(c1.Bytes(), c2.Bytes()) {
			t.Errorf("body changed in round trip: %s vs %s", c1.Bytes(), c2.Bytes())
		}
	})
}

// A message assembled from datagrams never takes more memory than
// MaxMessageSize, however its pieces come.
func TestAppendLimited(t *testing.T) {
	// with returns n bytes of 'a' with capacity n: a message assembled so
	// far.
	with := func(n int) []byte { return bytes.Repeat([]byte{'a'}, n)[:n:n] }
	tests := []struct {
		name    string
		msg     []byte
		piece   int
		wantCap int // 0: anything from the length to MaxMessageSize
	}{
		{name: "first piece", msg: nil, piece: MaxDatagramSize - 1, wantCap: MaxDatagramSize - 1},
		{name: "doubles", msg: with(1000), piece: 10, wantCap: 2000},
		{name: "grows to the piece", msg: with(10), piece: 1000, wantCap: 1010},
		{name: "past half the limit", msg: with(MaxMessageSize/2 + 10), piece: MaxDatagramSize - 1, wantCap: MaxMessageSize},
		{name: "to the limit exactly", msg: with(MaxMessageSize - 100), piece: 100, wantCap: MaxMessageSize},
		{name: "room left", msg: with(100)[:50], piece: 50, wantCap: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			piece := bytes.Repeat([]byte{'b'}, tt.piece)
			want := append(bytes.Clone(tt.msg), piece...)
			got := appendLimited(tt.msg, piece)
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d bytes, the piece after the message", len(got), len(want))
			}
			if cap(got) != tt.wantCap {
				t.Errorf("capacity %d, want %d", cap(got), tt.wantCap)
			}
		})
	}

	// A whole message, piece by piece.
	var msg []byte
	piece := bytes.Repeat([]byte{'c'}, MaxDatagramSize-1)
	for len(msg) < MaxMessageSize {
		msg = appendLimited(msg, piece[:min(len(piece), MaxMessageSize-len(msg))])
		if cap(msg) > MaxMessageSize {
			t.Fatalf("after %d bytes: capacity %d, more than MaxMessageSize", len(msg), cap(msg))
		}
	}
}
