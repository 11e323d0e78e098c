package netsettings

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// Encode returns the canonical JSON encoding of s: the fields in a fixed
// order, unset fields left out, indented by two spaces, with a final
// newline. The output is deterministic and [Decode] reads it back into
// settings that are [Settings.Equal] to s. json.Marshal produces the same
// document without indentation.
//
// Encode does not validate s; it fails only if s holds a value that has no
// encoding, such as an unknown [DNSProtocol].
func (s *Settings) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding network settings: %w", err)
	}
	return append(b, '\n'), nil
}

// UnmarshalJSON implements json.Unmarshaler with the strict rules of
// [Decode], so settings embedded in a larger message are checked the same
// way. Problem paths are relative to the settings object.
func (s *Settings) UnmarshalJSON(data []byte) error {
	d, err := Decode(data)
	if err != nil {
		return err
	}
	*s = *d
	return nil
}

// String returns s as compact JSON with proxy passwords redacted.
func (s *Settings) String() string {
	if s == nil {
		return "<nil>"
	}
	return string(s.redacted())
}

// LogValue implements slog.LogValuer: s as JSON with proxy passwords
// redacted. A JSON handler embeds it as an object, a text handler as a
// string.
func (s *Settings) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<nil>")
	}
	return slog.AnyValue(s.redacted())
}

// redacted returns the JSON encoding of s without proxy passwords.
func (s *Settings) redacted() redactedJSON {
	c := *s // shallow: only Proxy is replaced
	c.Proxy = s.Proxy.redacted()
	b, err := json.Marshal(&c)
	if err != nil {
		return redactedJSON(fmt.Sprintf("%q", "!"+err.Error()))
	}
	return b
}

// logJSON returns a slog value holding v's JSON encoding; v must carry no
// secrets.
func logJSON(v any) slog.Value {
	b, err := json.Marshal(v)
	if err != nil {
		return slog.StringValue("!" + err.Error())
	}
	return slog.AnyValue(redactedJSON(b))
}

// redactedJSON is JSON text already stripped of secrets. It marshals as
// itself for JSON handlers and as text for text handlers.
type redactedJSON []byte

func (r redactedJSON) MarshalJSON() ([]byte, error) { return r, nil }
func (r redactedJSON) MarshalText() ([]byte, error) { return r, nil }
func (r redactedJSON) String() string               { return string(r) }

// MAC is an Ethernet (EUI-48) address. Its text and JSON form is six
// colon-separated pairs of hex digits, "02:00:5e:10:00:01"; the zero MAC is
// "unset".
type MAC [6]byte

// ParseMAC parses "xx:xx:xx:xx:xx:xx" (hex digits in either case).
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return MAC{}, fmt.Errorf("malformed MAC address %q (want six colon-separated hex pairs such as 02:00:5e:10:00:01)", s)
	}
	for i := range m {
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 || (i < 5 && s[3*i+2] != ':') {
			return MAC{}, fmt.Errorf("malformed MAC address %q (want six colon-separated hex pairs such as 02:00:5e:10:00:01)", s)
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns m in lower-case "xx:xx:xx:xx:xx:xx" form.
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i, c := range m {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// IsZero reports whether m is the zero (unset) MAC.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsMulticast reports whether m is a group address (the low bit of the first
// octet is set); the broadcast address is one.
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool {
	return m == MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(text []byte) error {
	v, err := ParseMAC(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
