package providerproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Protocol versions and limits. They are part of the wire protocol: a change
// to any of them needs a new protocol version.
const (
	// ProtocolVersion is the newest protocol version this package speaks.
	ProtocolVersion = 1
	// MinProtocolVersion is the oldest protocol version this package speaks.
	MinProtocolVersion = 1

	// MaxMessageSize is the largest message, in bytes of JSON text, that a
	// peer may send. Larger messages are refused by the sender and dropped
	// by the receiver, which never holds more than this of a message while
	// it assembles it. The largest messages are setSettings with many
	// routes: 100,000 routes (half of them IPv6, all with a gateway, all
	// with the longest text) take 8.3 MiB of compact JSON and 11.5 MiB
	// indented by two spaces; 100,000 routes of each family without
	// gateways take 6.7 MiB compact.
	MaxMessageSize = 16 << 20
	// MaxDatagramSize is the largest datagram, in bytes, that a peer may
	// send. A message longer than this travels as several datagrams (see
	// the package documentation). A datagram of this size always fits the
	// default socket send buffer (about 208 KiB on Linux), which one
	// datagram of MaxMessageSize would not.
	MaxDatagramSize = 64 << 10
	// MaxFiles is the largest number of file descriptors that may travel
	// with one message.
	MaxFiles = 4

	// EnvFD names the environment variable that tells a provider process
	// the number of its inherited protocol socket.
	EnvFD = "NETEXT_PROVIDER_FD"
	// DefaultFD is the provider's protocol socket when EnvFD is not set:
	// the first of exec.Cmd.ExtraFiles.
	DefaultFD = 3
)

// fragmentMarker starts every datagram of a message that is followed by
// more datagrams of the same message. JSON text never starts with it.
const fragmentMarker = '+'

// Message types. The package documentation lists which side sends each,
// whether it is a request or a notification, and its body.
const (
	TypeReply = "reply" // the answer to a request; carries the request's id

	// provider → daemon
	TypeHello       = "hello"       // request: version negotiation, always the provider's first message
	TypeSetSettings = "setSettings" // request: apply or clear network settings
	TypeProtect     = "protect"     // request: mark one attached socket so it bypasses the tunnel
	TypeReasserting = "reasserting" // notification: the provider is reconnecting, or done
	TypeCancel      = "cancel"      // notification: the provider gives up the tunnel

	// daemon → provider
	TypeStart         = "start"         // request: start the tunnel
	TypeStop          = "stop"          // request: stop the tunnel
	TypeAppMessage    = "appMessage"    // request: a message from an app
	TypeSleep         = "sleep"         // request: the system is about to sleep
	TypeWake          = "wake"          // notification: the system woke up
	TypePath          = "path"          // notification: the default network path changed
	TypeConfiguration = "configuration" // notification: the configuration changed
)

// Message is one protocol message: a request (ID not zero), a notification
// (ID zero) or a reply (Type is TypeReply, ID is that of the request).
//
// File descriptors that travel with a message are not part of Message.
type Message struct {
	// ID numbers a request among those of its sender, starting at 1. It
	// is zero for notifications.
	ID uint64 `json:"id,omitempty"`
	// Type is the message type, such as "setSettings" or "reply".
	Type string `json:"type"`
	// Error is set in a reply that reports a failure; Body is then
	// ignored. Other messages never carry an error.
	Error *Error `json:"error,omitempty"`
	// Body is a JSON object, or nil for none (an empty object).
	Body json.RawMessage `json:"body,omitempty"`
}

// Kind tells requests, notifications and replies apart.
type Kind int

// Message kinds.
const (
	KindNotification Kind = iota
	KindRequest
	KindReply
)

// String returns "notification", "request" or "reply".
func (k Kind) String() string {
	switch k {
	case KindNotification:
		return "notification"
	case KindRequest:
		return "request"
	case KindReply:
		return "reply"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Kind returns the kind of m.
func (m *Message) Kind() Kind {
	switch {
	case m.Type == TypeReply:
		return KindReply
	case m.ID != 0:
		return KindRequest
	}
	return KindNotification
}

// check reports the first rule of the envelope that m breaks.
func (m *Message) check() error {
	switch {
	case m.Type == "":
		return errors.New("type: missing")
	case m.Type == TypeReply && m.ID == 0:
		return errors.New("id: a reply needs the id of its request")
	case m.Type != TypeReply && m.Error != nil:
		return fmt.Errorf("error: only replies carry an error, not %q", m.Type)
	case m.Error != nil && m.Error.Code == "":
		return errors.New("error.code: missing")
	}
	if len(m.Body) > 0 && !isObject(m.Body) {
		return errors.New("body: must be a JSON object")
	}
	return nil
}

// Decode parses one message of JSON text. It accepts exactly what [Encode]
// may produce and what the protocol allows: UTF-8, at most MaxMessageSize
// bytes, one JSON object with a type, a body that is an object (or null or
// absent), and an error only in replies. Unknown fields are ignored so that
// newer peers can add them.
func Decode(data []byte) (*Message, error) {
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("message of %d bytes exceeds the limit of %d bytes (MaxMessageSize)", len(data), MaxMessageSize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("message is not valid UTF-8")
	}
	if !isObject(data) {
		return nil, errors.New("message is not a JSON object")
	}
	// Field names are matched exactly (encoding/json alone would match
	// "ID" and "Type" too).
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("decoding message: %w", err)
	}
	var m Message
	if v, ok := fields["id"]; ok {
		if err := json.Unmarshal(v, &m.ID); err != nil {
			return nil, fmt.Errorf("id: %.40s is not an integer from 0 to 2^64-1", v)
		}
	}
	if v, ok := fields["type"]; ok {
		if err := json.Unmarshal(v, &m.Type); err != nil {
			return nil, fmt.Errorf("type: %.40s is not a string", v)
		}
	}
	if v, ok := fields["error"]; ok {
		if err := json.Unmarshal(v, &m.Error); err != nil {
			return nil, fmt.Errorf("error: %w", err)
		}
	}
	if v := fields["body"]; len(v) > 0 && !bytes.Equal(v, []byte("null")) {
		m.Body = v
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Encode returns the JSON text of m, without a trailing newline. It fails
// when m breaks a rule that [Decode] checks, or when the text is longer than
// MaxMessageSize. The body is copied as it is, after a check that it is
// valid JSON in UTF-8.
func Encode(m *Message) ([]byte, error) {
	// The size is checked first: copying is cheap, validating a body that
	// is too large anyway is not.
	data, err := encode(m)
	if err != nil {
		return nil, err
	}
	if body := bytes.TrimSpace(m.Body); len(body) > 0 && (!json.Valid(body) || !utf8.Valid(body)) {
		return nil, fmt.Errorf("%s message: body: not valid JSON in UTF-8", m.Type)
	}
	return data, nil
}

// encode is Encode without the check of the body, for bodies that
// [MarshalBody] returned.
func encode(m *Message) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(m.Body)
	typ, err := marshalNoEscape(m.Type)
	if err != nil {
		return nil, fmt.Errorf("encoding %s message: %w", m.Type, err)
	}
	var errText []byte
	if m.Error != nil {
		if errText, err = marshalNoEscape(m.Error); err != nil {
			return nil, fmt.Errorf("encoding %s message: %w", m.Type, err)
		}
	}
	data := make([]byte, 0, 64+len(typ)+len(errText)+len(body))
	data = append(data, '{')
	if m.ID != 0 {
		data = append(data, `"id":`...)
		data = strconv.AppendUint(data, m.ID, 10)
		data = append(data, ',')
	}
	data = append(data, `"type":`...)
	data = append(data, typ...)
	if m.Error != nil {
		data = append(data, `,"error":`...)
		data = append(data, errText...)
	}
	if len(body) > 0 {
		data = append(data, `,"body":`...)
		data = append(data, body...)
	}
	data = append(data, '}')
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("%s message of %d bytes exceeds the limit of %d bytes (MaxMessageSize)", m.Type, len(data), MaxMessageSize)
	}
	return data, nil
}

// MarshalBody returns v as a message body: nil for a nil v or JSON null, and
// an error unless v encodes to a JSON object. A json.RawMessage is checked
// and returned as it is.
func MarshalBody(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		raw = bytes.TrimSpace(raw)
		switch {
		case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
			return nil, nil
		case !isObject(raw) || !json.Valid(raw) || !utf8.Valid(raw):
			return nil, errors.New("encoding body: not a JSON object in UTF-8")
		}
		return raw, nil
	}
	data, err := marshalNoEscape(v)
	if err != nil {
		return nil, fmt.Errorf("encoding body: %w", err)
	}
	if bytes.Equal(data, []byte("null")) {
		return nil, nil
	}
	if !isObject(data) {
		return nil, fmt.Errorf("encoding body: %T does not encode to a JSON object", v)
	}
	return data, nil
}

// marshalNoEscape is json.Marshal without escaping <, > and &.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalBody decodes a message body into v. A nil body decodes like an
// empty object. Unknown fields are ignored.
func UnmarshalBody(body json.RawMessage, v any) error {
	if len(body) == 0 {
		body = json.RawMessage("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding body: %w", err)
	}
	return nil
}

// isObject reports whether data, after leading white space, starts a JSON
// object.
func isObject(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

// splitDatagrams cuts the JSON text of one message into datagrams of at
// most MaxDatagramSize bytes. Every datagram but the last starts with
// fragmentMarker; the last one never does (JSON text ends with '}', so a
// last datagram that would start with the marker is shortened).
func splitDatagrams(data []byte) [][]byte {
	if len(data) <= MaxDatagramSize {
		return [][]byte{data}
	}
	last := len(data) - MaxDatagramSize
	for last < len(data)-1 && data[last] == fragmentMarker {
		last++
	}
	const chunk = MaxDatagramSize - 1
	var out [][]byte
	for i := 0; i < last; i += chunk {
		end := min(i+chunk, last)
		d := make([]byte, 0, 1+end-i)
		d = append(d, fragmentMarker)
		out = append(out, append(d, data[i:end]...))
	}
	return append(out, data[last:])
}
