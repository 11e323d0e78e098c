package sample

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
	"golang.zx2c4.com/wireguard/replay"
)

// Message types, the first byte of every datagram.
const (
	typeHello = 1
	typeAck   = 2
	typeData  = 3
)

// Sizes of the wire format, in bytes.
const (
	// HeaderLen is the length of a data message's header: type, three
	// zero bytes, and the 64-bit counter.
	HeaderLen = 12
	// TagLen is the length of the Poly1305 authentication tag.
	TagLen = chacha20poly1305.Overhead
	// Overhead is what the protocol adds to each tunnelled packet. The
	// outer IP and UDP headers add 28 (IPv4) or 48 (IPv6) bytes more.
	Overhead = HeaderLen + TagLen

	randomLen    = 32
	xnonceLen    = chacha20poly1305.NonceSizeX
	helloBodyLen = randomLen + 8
	ackBodyLen   = 2 * randomLen
	helloLen     = 4 + xnonceLen + helloBodyLen + TagLen // 84
	ackLen       = 4 + xnonceLen + ackBodyLen + TagLen   // 108
)

// rejectAfter is the counter at which a session stops: no key ever
// encrypts more than this many packets. A tunnel reaching it must be
// restarted (at a million packets a second, after 36,000 years).
const rejectAfter = 1 << 60

// HKDF info strings, one per key.
const (
	infoHello = "netext sample v1 hello"
	infoAck   = "netext sample v1 ack"
	infoData  = "netext sample v1 data"
)

// Key is the pre-shared key both ends of a tunnel hold. Its String and
// GoString methods never show it; Base64 does.
type Key [32]byte

// ParseKey decodes a key from standard base64 (44 characters), the form
// GenerateKey's Base64 writes and wg(8) uses. Surrounding white space is
// ignored.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return k, errors.New("sample: key is not valid base64")
	}
	if len(b) != len(k) {
		return k, fmt.Errorf("sample: key is %d bytes, want %d", len(b), len(k))
	}
	copy(k[:], b)
	if k == (Key{}) {
		return k, errors.New("sample: key is all zeros")
	}
	return k, nil
}

// GenerateKey returns a new random key.
func GenerateKey() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// Base64 returns the key in the form ParseKey reads.
func (k Key) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// String returns "[redacted]".
func (k Key) String() string { return "[redacted]" }

// GoString returns "sample.Key([redacted])".
func (k Key) GoString() string { return "sample.Key([redacted])" }

// derive returns n bytes of HKDF-SHA256 output keyed by k.
func (k *Key) derive(salt []byte, info string, n int) []byte {
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.New(sha256.New, k[:], salt, []byte(info)), out); err != nil {
		panic("sample: HKDF: " + err.Error()) // cannot happen for n <= 255*32
	}
	return out
}

// handshakeAEADs are the fixed keys of the handshake messages, derived from
// the pre-shared key alone: one for hellos, one for acks, so neither can be
// passed off as the other.
type handshakeAEADs struct {
	hello, ack cipher.AEAD
}

func newHandshakeAEADs(k *Key) handshakeAEADs {
	hello, err1 := chacha20poly1305.NewX(k.derive(nil, infoHello, chacha20poly1305.KeySize))
	ack, err2 := chacha20poly1305.NewX(k.derive(nil, infoAck, chacha20poly1305.KeySize))
	if err := errors.Join(err1, err2); err != nil {
		panic("sample: " + err.Error()) // the key size is right by construction
	}
	return handshakeAEADs{hello: hello, ack: ack}
}

// sealHandshake builds a hello or ack: the 4-byte header, a random
// 24-byte nonce, then body encrypted with the header as additional data.
func sealHandshake(aead cipher.AEAD, typ byte, body []byte) []byte {
	out := make([]byte, 4+xnonceLen, 4+xnonceLen+len(body)+TagLen)
	out[0] = typ
	if _, err := rand.Read(out[4:]); err != nil {
		panic("sample: no randomness: " + err.Error()) // crypto/rand never fails on Linux
	}
	return aead.Seal(out, out[4:4+xnonceLen], body, out[:4])
}

// openHandshake checks and decrypts a hello or ack of the given type and
// length, returning its body.
func openHandshake(aead cipher.AEAD, typ byte, wantLen int, msg []byte) ([]byte, bool) {
	if len(msg) != wantLen || msg[0] != typ || msg[1]|msg[2]|msg[3] != 0 {
		return nil, false
	}
	body, err := aead.Open(nil, msg[4:4+xnonceLen], msg[4+xnonceLen:], msg[:4])
	return body, err == nil
}

// hello is a client's first message.
type hello struct {
	clientRandom [randomLen]byte
	timestamp    uint64 // nanoseconds since 1970; the server accepts increasing values only
}

func (hs handshakeAEADs) sealHello(h hello) []byte {
	body := make([]byte, helloBodyLen)
	copy(body, h.clientRandom[:])
	binary.BigEndian.PutUint64(body[randomLen:], h.timestamp)
	return sealHandshake(hs.hello, typeHello, body)
}

func (hs handshakeAEADs) openHello(msg []byte) (hello, bool) {
	var h hello
	body, ok := openHandshake(hs.hello, typeHello, helloLen, msg)
	if !ok {
		return h, false
	}
	copy(h.clientRandom[:], body)
	h.timestamp = binary.BigEndian.Uint64(body[randomLen:])
	return h, true
}

// ack is the server's answer to a hello.
type ack struct {
	clientRandom, serverRandom [randomLen]byte
}

func (hs handshakeAEADs) sealAck(a ack) []byte {
	body := make([]byte, 0, ackBodyLen)
	body = append(append(body, a.clientRandom[:]...), a.serverRandom[:]...)
	return sealHandshake(hs.ack, typeAck, body)
}

func (hs handshakeAEADs) openAck(msg []byte) (ack, bool) {
	var a ack
	body, ok := openHandshake(hs.ack, typeAck, ackLen, msg)
	if !ok {
		return a, false
	}
	copy(a.clientRandom[:], body)
	copy(a.serverRandom[:], body[randomLen:])
	return a, true
}

// session holds the data keys of one hello/ack exchange.
type session struct {
	clientRandom [randomLen]byte
	send, recv   cipher.AEAD
	sendCounter  atomic.Uint64 // the next counter to use
	replay       replay.Filter // used by the receiving goroutine only
	ack          []byte        // server: the ack, sent again for a repeated hello
}

// newSession derives the session's keys: HKDF-SHA256 of the pre-shared key,
// salted with both randoms, gives one key per direction, so a packet
// reflected back to its sender does not authenticate.
func newSession(k *Key, a ack, isClient bool) *session {
	salt := append(a.clientRandom[:len(a.clientRandom):len(a.clientRandom)], a.serverRandom[:]...)
	keys := k.derive(salt, infoData, 2*chacha20poly1305.KeySize)
	c2s, err1 := chacha20poly1305.New(keys[:chacha20poly1305.KeySize])
	s2c, err2 := chacha20poly1305.New(keys[chacha20poly1305.KeySize:])
	clear(keys)
	if err := errors.Join(err1, err2); err != nil {
		panic("sample: " + err.Error()) // the key size is right by construction
	}
	s := &session{clientRandom: a.clientRandom, send: s2c, recv: c2s}
	if isClient {
		s.send, s.recv = c2s, s2c
	}
	return s
}

// nonce writes the 96-bit ChaCha20-Poly1305 nonce for counter: four zero
// bytes and the counter, little-endian.
func nonce(dst *[chacha20poly1305.NonceSize]byte, counter uint64) {
	binary.LittleEndian.PutUint64(dst[4:], counter)
}

// sealer encrypts data messages for one goroutine; its nonce buffer is
// reused so sealing allocates nothing.
type sealer struct {
	nonce [chacha20poly1305.NonceSize]byte
}

// seal encrypts the packet at buf[HeaderLen:HeaderLen+n] in place and
// returns the whole message, HeaderLen+n+TagLen bytes of buf, which must
// have room for the tag.
func (sl *sealer) seal(s *session, counter uint64, buf []byte, n int) []byte {
	buf[0], buf[1], buf[2], buf[3] = typeData, 0, 0, 0
	binary.LittleEndian.PutUint64(buf[4:HeaderLen], counter)
	nonce(&sl.nonce, counter)
	pt := buf[HeaderLen : HeaderLen+n]
	ct := s.send.Seal(pt[:0], sl.nonce[:], pt, buf[:HeaderLen])
	return buf[:HeaderLen+len(ct)]
}

// Reasons a data message is dropped.
var (
	errMalformed = errors.New("malformed message")
	errAuth      = errors.New("message failed authentication")
	errReplay    = errors.New("replayed or too old counter")
)

// opener decrypts data messages for the receiving goroutine.
type opener struct {
	nonce [chacha20poly1305.NonceSize]byte
}

// open authenticates and decrypts the data message msg, appending the
// packet to dst, and checks its counter against the session's replay
// window. The window moves only for messages that authenticate.
func (op *opener) open(s *session, dst, msg []byte) ([]byte, error) {
	if len(msg) < Overhead || msg[0] != typeData || msg[1]|msg[2]|msg[3] != 0 {
		return nil, errMalformed
	}
	counter := binary.LittleEndian.Uint64(msg[4:HeaderLen])
	nonce(&op.nonce, counter)
	pt, err := s.recv.Open(dst, op.nonce[:], msg[HeaderLen:], msg[:HeaderLen])
	if err != nil {
		return nil, errAuth
	}
	if !s.replay.ValidateCounter(counter, rejectAfter) {
		return nil, errReplay
	}
	return pt, nil
}
