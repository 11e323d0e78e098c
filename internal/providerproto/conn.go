package providerproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Role says which end of the protocol a Conn is.
type Role int

// Roles.
const (
	// RoleDaemon is the daemon's end: it answers "hello" itself and
	// accepts the provider's message types.
	RoleDaemon Role = iota + 1
	// RoleProvider is the provider's end: it sends "hello" (see
	// [Conn.Hello]) and accepts the daemon's message types.
	RoleProvider
)

// String returns "daemon" or "provider".
func (r Role) String() string {
	switch r {
	case RoleDaemon:
		return "daemon"
	case RoleProvider:
		return "provider"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// typeRule says how a message type may arrive.
type typeRule struct {
	request bool // a request (with an id), not a notification
	files   int  // the exact number of file descriptors it carries
}

// accepts lists the message types each role receives. Anything else is
// answered with CodeUnsupported (requests) or dropped (notifications).
var accepts = map[Role]map[string]typeRule{
	RoleDaemon: {
		TypeSetSettings: {request: true},
		TypeProtect:     {request: true, files: 1},
		TypeReasserting: {},
		TypeCancel:      {},
	},
	RoleProvider: {
		TypeStart:         {request: true},
		TypeStop:          {request: true},
		TypeAppMessage:    {request: true},
		TypeSleep:         {request: true},
		TypeWake:          {},
		TypePath:          {},
		TypeConfiguration: {},
	},
}

// Handler handles the requests and notifications that a Conn receives.
//
// A Conn calls its Handler from its one reader goroutine, one message at a
// time, in the order the messages arrived. While a Handler runs, the Conn
// reads nothing else, not even replies to its own requests. A Handler must
// therefore return promptly and must never wait for a reply: it answers a
// quick request itself, and hands a slow one (such as "start") to another
// goroutine, which replies later with [Incoming.Reply]. Every request must
// be answered exactly once.
//
// Only message types that the Conn's role accepts reach the Handler, with
// the number of file descriptors the type requires; the Conn answers or
// drops the rest itself.
type Handler func(*Incoming)

// Config configures a Conn.
type Config struct {
	// Role is the end of the protocol the Conn is. Required.
	Role Role
	// Handler handles incoming requests and notifications. If nil,
	// requests are answered with CodeUnsupported and notifications are
	// dropped.
	Handler Handler
	// Logger receives protocol errors (warnings) and every message sent
	// and received (debug; type, id, size and file count, never bodies).
	// If nil, nothing is logged.
	Logger *slog.Logger
	// Software names this end as "name/version". A daemon sends it in its
	// welcome.
	Software string
	// OnProtocolError, if not nil, is called once for every message that
	// the peer sent in breach of the protocol and that the Conn dropped or
	// refused (see "Protocol errors" in docs/provider-protocol.md), and for
	// a first message of the provider that is not a valid hello. err says
	// what was wrong. It is not called for unknown message types, for a
	// provider and daemon that share no protocol version, nor for a late
	// reply to a request given up on.
	//
	// It runs on the reader goroutine, before any error reply goes out,
	// and must return promptly without waiting for the Conn, like a
	// Handler. [Conn.ProtocolErrors] counts the same events.
	OnProtocolError func(err error)
}

// Conn is one end of a protocol connection. It owns its socket and runs one
// reader goroutine that matches replies to requests and passes requests
// and notifications to the Handler. All methods are safe for concurrent
// use.
type Conn struct {
	role     Role
	handler  Handler
	log      *slog.Logger
	software string

	uc *net.UnixConn
	rc syscall.RawConn

	onProtocolError func(error)
	protocolErrors  atomic.Uint64

	// sendTurn holds a token while a send writes, so that the datagrams of
	// one message are not interleaved with those of another. Unlike a
	// mutex, waiting for it ends with the sender's context. Order: a send
	// takes its turn, then mu.
	sendTurn chan struct{}

	mu       sync.Mutex // guards the fields below
	nextID   uint64
	pending  map[uint64]chan<- response // by request id
	err      error                      // why the connection closed; nil while open
	version  uint32                     // negotiated protocol version; 0 before hello
	hello    *Hello                     // the provider's hello (daemon role)
	helloErr error                      // why hello failed (daemon role)

	helloDone chan struct{} // closed once the handshake is over (daemon role)
	closing   chan struct{} // closed when the connection starts to close
	done      chan struct{} // closed when the reader goroutine has exited
}

// response is what a Request waits for.
type response struct {
	msg   *Message
	files []*os.File
	err   error
}

// New starts a Conn on f, an AF_UNIX SOCK_SEQPACKET socket such as one end
// of [Socketpair] or the socket a provider inherited (see [FromEnv]). New
// takes ownership of f: it closes f, also when it fails. Close the Conn to
// release it.
func New(f *os.File, cfg Config) (*Conn, error) {
	defer f.Close()
	if cfg.Role != RoleDaemon && cfg.Role != RoleProvider {
		return nil, fmt.Errorf("providerproto: Config.Role: %v is neither daemon nor provider", cfg.Role)
	}
	uc, rc, err := openSocket(f)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{
		role:            cfg.Role,
		handler:         cfg.Handler,
		log:             log,
		software:        cfg.Software,
		uc:              uc,
		rc:              rc,
		sendTurn:        make(chan struct{}, 1),
		pending:         make(map[uint64]chan<- response),
		onProtocolError: cfg.OnProtocolError,
		helloDone:       make(chan struct{}),
		closing:         make(chan struct{}),
		done:            make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// FromEnv starts a provider's Conn on the socket it inherited: the file
// descriptor named by the NETEXT_PROVIDER_FD environment variable, or 3
// (DefaultFD) when it is not set.
func FromEnv(cfg Config) (*Conn, error) {
	fd := DefaultFD
	if s, ok := os.LookupEnv(EnvFD); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("providerproto: %s=%q is not a file descriptor number", EnvFD, s)
		}
		fd = n
	}
	if err := checkFD(fd); err != nil {
		return nil, fmt.Errorf("providerproto: inherited socket %d (%s): %w", fd, EnvFD, err)
	}
	return New(os.NewFile(uintptr(fd), "providerproto"), cfg)
}

// Role returns the role the Conn was started with.
func (c *Conn) Role() Role { return c.role }

// Version returns the negotiated protocol version, or 0 before the
// handshake has completed.
func (c *Conn) Version() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// ProtocolErrors returns the number of messages that the peer sent in breach
// of the protocol so far: the events reported to Config.OnProtocolError.
func (c *Conn) ProtocolErrors() uint64 { return c.protocolErrors.Load() }

// Done returns a channel that is closed when the connection has closed and
// its reader goroutine has exited.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is open, and afterwards an error
// that wraps ErrClosed and the cause, such as ErrPeerClosed.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedErrLocked()
}

func (c *Conn) closedErrLocked() error {
	if c.err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrClosed, c.err)
}

// Close closes the connection. Pending requests fail at once with an error
// that wraps ErrClosed; blocked sends return. The reader goroutine exits as
// soon as a running Handler returns, and then Done is closed. Close may be
// called more than once and from a Handler; it always returns nil.
func (c *Conn) Close() error {
	c.shutdown(errClosedLocally)
	return nil
}

// shutdown closes the connection for the given cause, unless it is closed
// already.
func (c *Conn) shutdown(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = cause
	pending := c.pending
	c.pending = nil
	err := c.closedErrLocked()
	c.mu.Unlock()

	close(c.closing)
	_ = c.uc.Close()
	for _, ch := range pending {
		ch <- response{err: err}
	}
	if cause != errClosedLocally {
		c.log.Debug("providerproto: connection closed", "cause", cause)
	}
}

// Reply is a successful reply to a request.
type Reply struct {
	// Body is the reply's body, nil for none.
	Body json.RawMessage
	// Files are the file descriptors that came with the reply, marked
	// close-on-exec. The caller owns them.
	Files []*os.File
}

// Decode decodes the reply's body into v; see [UnmarshalBody].
func (r *Reply) Decode(v any) error { return UnmarshalBody(r.Body, v) }

// CloseFiles closes every file that came with the reply.
func (r *Reply) CloseFiles() { closeFiles(r.Files) }

// Request sends a request and waits for its reply. body is encoded with
// [MarshalBody]; files (at most MaxFiles) travel with the request, and
// stay owned by the caller, who may close them once Request returns.
//
// An error reply is returned as an error that wraps an *Error. When ctx
// ends first, Request returns ctx's error and abandons the request: the
// connection stays usable, and a reply that comes later is dropped (its
// files closed). ctx also bounds the sending, which waits while earlier
// messages are going out and while the peer reads nothing; when ctx ends
// after part of a long request went out, the connection closes (see
// [Conn.Notify]). When the connection closes, Request returns an error
// that wraps ErrClosed and the cause.
func (c *Conn) Request(ctx context.Context, typ string, body any, files ...*os.File) (*Reply, error) {
	if typ == TypeReply {
		return nil, errors.New("providerproto: a request cannot have type reply")
	}
	raw, err := MarshalBody(body)
	if err != nil {
		return nil, fmt.Errorf("providerproto: %s: %w", typ, err)
	}
	if c.role == RoleDaemon {
		select {
		case <-c.helloDone:
		default:
			return nil, fmt.Errorf("providerproto: %s: the provider has not said hello yet", typ)
		}
	}
	ch := make(chan response, 1)
	c.mu.Lock()
	if err := c.closedErrLocked(); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.send(ctx, &Message{ID: id, Type: typ, Body: raw}, files); err != nil {
		c.abandon(id, ch)
		return nil, err
	}
	select {
	case r := <-ch:
		return r.reply(typ)
	case <-ctx.Done():
		if r, ok := c.abandon(id, ch); ok {
			return r.reply(typ)
		}
		return nil, fmt.Errorf("providerproto: %s request %d: %w", typ, id, ctx.Err())
	}
}

// abandon forgets request id. If its reply has arrived in the meantime, it
// returns it.
func (c *Conn) abandon(id uint64, ch chan response) (response, bool) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
	select {
	case r := <-ch:
		return r, true
	default:
		return response{}, false
	}
}

func (r response) reply(typ string) (*Reply, error) {
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("%s: %w", typ, r.err)
	case r.msg.Error != nil:
		closeFiles(r.files)
		return nil, fmt.Errorf("providerproto: %s: %w", typ, r.msg.Error)
	}
	return &Reply{Body: r.msg.Body, Files: r.files}, nil
}

// Notify sends a notification. body and files are as for Request. It
// returns once the message is in the socket, or with ctx's error if ctx
// ends first, whether it was waiting for earlier messages to go out or for
// the peer to read. A message longer than MaxDatagramSize travels as
// several datagrams; if ctx ends after some of them went out, the peer
// holds part of a message and could not read the next one correctly, so
// the connection closes: the error then wraps both ctx's error and
// ErrClosed.
func (c *Conn) Notify(ctx context.Context, typ string, body any, files ...*os.File) error {
	if typ == TypeReply {
		return errors.New("providerproto: a notification cannot have type reply")
	}
	raw, err := MarshalBody(body)
	if err != nil {
		return fmt.Errorf("providerproto: %s: %w", typ, err)
	}
	return c.send(ctx, &Message{Type: typ, Body: raw}, files)
}

// Hello performs the provider's side of the handshake: it sends "hello"
// with h (zero fields filled in with this package's versions and the
// process id) and checks the daemon's welcome. Call it before anything
// else. On a version mismatch the error wraps a CodeUnsupported *Error that
// names both ranges, and the daemon closes the connection.
func (c *Conn) Hello(ctx context.Context, h Hello) (*Welcome, error) {
	if c.role != RoleProvider {
		return nil, errors.New("providerproto: Hello is for the provider's end")
	}
	if h.ProtocolVersion == 0 {
		h.ProtocolVersion = ProtocolVersion
	}
	if h.MinProtocolVersion == 0 {
		h.MinProtocolVersion = MinProtocolVersion
	}
	if h.PID == 0 {
		h.PID = os.Getpid()
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("providerproto: hello: %w", err)
	}
	r, err := c.Request(ctx, TypeHello, &h)
	if err != nil {
		return nil, err
	}
	r.CloseFiles()
	var w Welcome
	if err := r.Decode(&w); err != nil {
		return nil, fmt.Errorf("providerproto: welcome: %w", err)
	}
	if w.ProtocolVersion < h.MinProtocolVersion || w.ProtocolVersion > h.ProtocolVersion {
		err := fmt.Errorf("providerproto: welcome: daemon chose protocol version %d, outside %d to %d", w.ProtocolVersion, h.MinProtocolVersion, h.ProtocolVersion)
		c.shutdown(err)
		return nil, err
	}
	c.mu.Lock()
	c.version = w.ProtocolVersion
	c.mu.Unlock()
	return &w, nil
}

// WaitHello waits until the provider has said hello and the daemon's end
// has answered with its welcome, and returns the provider's hello. It fails
// if the handshake failed (the error wraps the *Error sent to the
// provider), the connection closed, or ctx ended. Requests from the
// daemon's end fail until the handshake is over.
func (c *Conn) WaitHello(ctx context.Context) (*Hello, error) {
	if c.role != RoleDaemon {
		return nil, errors.New("providerproto: WaitHello is for the daemon's end")
	}
	select {
	case <-c.helloDone:
	case <-c.closing:
	case <-ctx.Done():
	}
	// Whatever woke us, what is known about the handshake wins over the
	// connection's end, and that over ctx: a failed handshake closes
	// helloDone before it closes the connection.
	select {
	case <-c.helloDone:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.helloErr != nil {
			return nil, c.helloErr
		}
		h := *c.hello
		return &h, nil
	default:
	}
	select {
	case <-c.closing:
		return nil, fmt.Errorf("providerproto: waiting for hello: %w", c.Err())
	default:
	}
	return nil, fmt.Errorf("providerproto: waiting for hello: %w", ctx.Err())
}

// Incoming is a request or notification received by a Conn.
type Incoming struct {
	// ID is the request's id, or 0 for a notification.
	ID uint64
	// Type is the message type.
	Type string
	// Body is the message body, nil for none.
	Body json.RawMessage
	// Files are the file descriptors that came with the message, marked
	// close-on-exec. The Handler owns them and must close them.
	Files []*os.File

	c       *Conn
	replied atomic.Bool
}

// IsNotification reports whether in is a notification, which gets no reply.
func (in *Incoming) IsNotification() bool { return in.ID == 0 }

// Decode decodes the body into v; see [UnmarshalBody].
func (in *Incoming) Decode(v any) error { return UnmarshalBody(in.Body, v) }

// CloseFiles closes every file that came with the message.
func (in *Incoming) CloseFiles() { closeFiles(in.Files) }

// Reply answers the request with a body (see [MarshalBody]) and files (at
// most MaxFiles, still owned by the caller). It may be called from any
// goroutine, once; it returns once the reply is in the socket, which takes
// as long as the peer reads nothing, or until the connection closes.
func (in *Incoming) Reply(body any, files ...*os.File) error {
	raw, err := MarshalBody(body)
	if err != nil {
		_ = in.ReplyError(NewError(CodeInternal, "encoding the reply failed"))
		return fmt.Errorf("providerproto: replying to %s: %w", in.Type, err)
	}
	return in.reply(&Message{ID: in.ID, Type: TypeReply, Body: raw}, files)
}

// ReplyError answers the request with an error; see [ToError] for how err
// becomes the reply's *Error. It may be called from any goroutine, once.
func (in *Incoming) ReplyError(err error) error {
	e := ToError(err)
	if e == nil {
		e = NewError(CodeInternal, "error reply without an error")
	}
	return in.reply(&Message{ID: in.ID, Type: TypeReply, Error: e}, nil)
}

func (in *Incoming) reply(m *Message, files []*os.File) error {
	if in.ID == 0 {
		return fmt.Errorf("providerproto: %s is a notification and gets no reply", in.Type)
	}
	if in.replied.Swap(true) {
		return fmt.Errorf("providerproto: %s request %d already answered", in.Type, in.ID)
	}
	return in.c.send(context.Background(), m, files)
}

// send writes one message, cut into datagrams, with files attached to the
// last one.
//
// Sends take turns. ctx bounds both the wait for the turn and the writing:
// a peer that reads nothing fills the socket, and a send stuck on it
// returns when its ctx ends (through the socket's write deadline) or the
// connection closes; so does every send waiting behind it. A message that
// ctx interrupts after its first datagram leaves the peer holding part of
// it, which nothing sent later could follow: the connection then closes,
// and the error wraps both ctx's error and ErrClosed. A message
// interrupted before its first datagram is simply not sent.
func (c *Conn) send(ctx context.Context, m *Message, files []*os.File) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("providerproto: %s: %d files exceed the limit of %d (MaxFiles)", m.Type, len(files), MaxFiles)
	}
	data, err := encode(m) // the body comes from MarshalBody, which checked it
	if err != nil {
		return fmt.Errorf("providerproto: %w", err)
	}
	fds, err := fileFDs(files)
	if err != nil {
		return fmt.Errorf("providerproto: %s: %w", m.Type, err)
	}
	defer runtime.KeepAlive(files)

	if err := c.Err(); err != nil {
		return fmt.Errorf("%s: %w", m.Type, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("providerproto: sending %s: %w", m.Type, err)
	}
	select {
	case c.sendTurn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("providerproto: sending %s: waiting for an earlier message to go out: %w", m.Type, ctx.Err())
	case <-c.closing:
		return fmt.Errorf("%s: %w", m.Type, c.Err())
	}
	defer func() { <-c.sendTurn }()
	if err := c.Err(); err != nil {
		return fmt.Errorf("%s: %w", m.Type, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("providerproto: sending %s: %w", m.Type, err)
	}
	// A context that ends interrupts the write through the write deadline,
	// which nobody else touches during this send's turn. The deadline is
	// reset before the turn passes on.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.uc.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
			_ = c.uc.SetWriteDeadline(time.Time{})
		}
	}()

	datagrams := splitDatagrams(data)
	for i, d := range datagrams {
		var rights []int
		if i == len(datagrams)-1 {
			rights = fds
		}
		if err := writeDatagram(c.uc, d, rights); err != nil {
			switch {
			case ctx.Err() != nil:
				err = ctx.Err()
			case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET):
				c.shutdown(ErrPeerClosed)
			}
			if i > 0 {
				// The peer holds part of a message; nothing sent later
				// could be read correctly.
				c.shutdown(fmt.Errorf("sending %s interrupted after %d of %d datagrams: %w", m.Type, i, len(datagrams), err))
				return fmt.Errorf("sending %s: %w", m.Type, c.Err())
			}
			if cerr := c.Err(); cerr != nil && ctx.Err() == nil {
				return fmt.Errorf("sending %s: %w", m.Type, cerr)
			}
			return fmt.Errorf("providerproto: sending %s: %w", m.Type, err)
		}
	}
	c.log.Debug("providerproto: sent", "type", m.Type, "id", m.ID, "bytes", len(data), "files", len(files))
	return nil
}

// readLoop is the reader goroutine.
func (c *Conn) readLoop() {
	defer close(c.done)
	buf := make([]byte, MaxDatagramSize)
	oob := make([]byte, oobSize)
	var (
		msg     []byte // the message being assembled from fragments
		dropErr error  // why the message being assembled will be dropped
	)
	for {
		d, err := readDatagram(c.rc, buf, oob)
		if err != nil {
			c.shutdown(err)
			return
		}
		files := newFiles(d.fds)
		if d.n == 0 && len(files) == 0 && !d.truncated {
			c.shutdown(ErrPeerClosed)
			return
		}
		fragment := d.n > 0 && buf[0] == fragmentMarker
		switch {
		case dropErr != nil:
		case d.truncated:
			dropErr = fmt.Errorf("a datagram exceeds the limit of %d bytes (MaxDatagramSize)", MaxDatagramSize)
		case d.ctruncated:
			dropErr = fmt.Errorf("a message carries more than %d files (MaxFiles)", MaxFiles)
		case fragment && len(files) > 0:
			dropErr = errors.New("files attached to a datagram other than the last of a message")
		case d.n == 0:
			dropErr = errors.New("empty datagram with files")
		case len(msg)+d.n-boolInt(fragment) > MaxMessageSize:
			dropErr = fmt.Errorf("message exceeds the limit of %d bytes (MaxMessageSize)", MaxMessageSize)
		}
		if fragment {
			closeFiles(files)
			if dropErr == nil {
				msg = appendLimited(msg, buf[1:d.n])
			}
			continue
		}
		data := buf[:d.n]
		switch {
		case len(msg) == 0:
		case len(msg)+d.n <= MaxMessageSize:
			data = appendLimited(msg, data)
		default: // too large: the start of the text is enough to report it
			data = msg
		}
		if dropErr != nil {
			c.protocolError(data, files, dropErr)
		} else {
			c.handle(data, files)
		}
		msg, dropErr = msg[:0], nil
		if cap(msg) > MaxDatagramSize {
			msg = nil
		}
		select {
		case <-c.closing:
			return
		default:
		}
	}
}

// protocolError reports a message that breaks the protocol. If the
// message's id and type can still be read and it is a request, the peer
// gets a CodeProtocol reply.
func (c *Conn) protocolError(data []byte, files []*os.File, err error) {
	closeFiles(files)
	var head struct {
		ID   uint64 `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &head)
	c.log.Warn("providerproto: dropping a message that breaks the protocol", "type", head.Type, "id", head.ID, "bytes", len(data), "files", len(files), "err", err)
	c.reportProtocolError(err)
	if head.ID != 0 && head.Type != TypeReply && head.Type != "" {
		c.replyError(head.ID, NewError(CodeProtocol, err.Error()))
	}
}

// reportProtocolError counts a breach of the protocol by the peer and
// passes it to Config.OnProtocolError.
func (c *Conn) reportProtocolError(err error) {
	c.protocolErrors.Add(1)
	if c.onProtocolError != nil {
		c.onProtocolError(err)
	}
}

// replyError sends an error reply from the reader goroutine.
func (c *Conn) replyError(id uint64, e *Error) {
	if err := c.send(context.Background(), &Message{ID: id, Type: TypeReply, Error: e}, nil); err != nil {
		c.log.Debug("providerproto: sending an error reply failed", "id", id, "err", err)
	}
}

// handle decodes and dispatches one message.
func (c *Conn) handle(data []byte, files []*os.File) {
	m, err := Decode(data)
	if err != nil {
		c.protocolError(data, files, err)
		return
	}
	c.log.Debug("providerproto: received", "type", m.Type, "id", m.ID, "bytes", len(data), "files", len(files))
	if m.Type == TypeReply {
		c.deliver(m, files)
		return
	}
	if c.role == RoleDaemon {
		select {
		case <-c.helloDone:
		default:
			c.handleHello(m, files)
			return
		}
	}
	rule, ok := accepts[c.role][m.Type]
	switch {
	case !ok && m.Type == TypeHello:
		c.protocolError(data, files, errors.New("hello: sent more than once"))
		return
	case !ok && m.ID != 0:
		closeFiles(files)
		c.replyError(m.ID, NewError(CodeUnsupported, fmt.Sprintf("the %s does not support %q requests (protocol version %d)", c.role, m.Type, ProtocolVersion)))
		return
	case !ok:
		closeFiles(files)
		c.log.Debug("providerproto: ignoring an unknown notification", "type", m.Type)
		return
	case rule.request && m.ID == 0:
		c.protocolError(data, files, fmt.Errorf("%s: must be a request (with an id), not a notification", m.Type))
		return
	case !rule.request && m.ID != 0:
		c.protocolError(data, files, fmt.Errorf("%s: must be a notification (without an id), not a request", m.Type))
		return
	case len(files) != rule.files:
		c.protocolError(data, files, fmt.Errorf("%s: carries %d files, want %d", m.Type, len(files), rule.files))
		return
	}
	in := &Incoming{ID: m.ID, Type: m.Type, Body: m.Body, Files: files, c: c}
	if c.handler == nil {
		in.CloseFiles()
		if m.ID != 0 {
			_ = in.ReplyError(NewError(CodeUnsupported, fmt.Sprintf("the %s handles no requests", c.role)))
		}
		return
	}
	c.handler(in)
}

// deliver passes a reply to the request waiting for it.
func (c *Conn) deliver(m *Message, files []*os.File) {
	c.mu.Lock()
	ch, ok := c.pending[m.ID]
	delete(c.pending, m.ID)
	issued := m.ID <= c.nextID
	c.mu.Unlock()
	if !ok {
		closeFiles(files)
		if issued {
			c.log.Debug("providerproto: dropping a reply to an abandoned request", "id", m.ID)
		} else {
			c.log.Warn("providerproto: dropping a reply to an unknown request", "id", m.ID)
			c.reportProtocolError(fmt.Errorf("reply to request %d, which was never sent", m.ID))
		}
		return
	}
	ch <- response{msg: m, files: files}
}

// handleHello handles the first message on the daemon's end, which must be
// "hello".
func (c *Conn) handleHello(m *Message, files []*os.File) {
	closeFiles(files)
	var h Hello
	err := func() error {
		switch {
		case m.Type != TypeHello || m.ID == 0:
			return NewError(CodeProtocol, fmt.Sprintf("the first message must be a hello request, not a %s %s", m.Type, m.Kind()))
		case len(files) > 0:
			return NewError(CodeProtocol, "hello: carries files")
		}
		if err := UnmarshalBody(m.Body, &h); err != nil {
			return NewError(CodeProtocol, "hello: "+err.Error())
		}
		if err := h.Validate(); err != nil {
			return NewError(CodeProtocol, "hello: "+err.Error())
		}
		v, err := Negotiate(h.MinProtocolVersion, h.ProtocolVersion)
		if err != nil {
			return err
		}
		// The welcome goes out before helloDone is closed, so that no
		// request of the daemon's end can overtake it.
		body, _ := MarshalBody(&Welcome{ProtocolVersion: v, Daemon: c.software})
		if err := c.send(context.Background(), &Message{ID: m.ID, Type: TypeReply, Body: body}, nil); err != nil {
			return err
		}
		c.mu.Lock()
		c.version = v
		c.hello = &h
		c.mu.Unlock()
		c.log.Info("providerproto: provider said hello", "version", v, "sdk", h.SDK, "pid", h.PID,
			"providerVersions", fmt.Sprintf("%d-%d", h.MinProtocolVersion, h.ProtocolVersion))
		return nil
	}()
	if err != nil {
		c.log.Warn("providerproto: handshake failed", "err", err)
		if IsCode(err, CodeProtocol) {
			c.reportProtocolError(err)
		}
		var e *Error
		if errors.As(err, &e) && m.ID != 0 && m.Type != TypeReply {
			c.replyError(m.ID, e)
		}
		c.mu.Lock()
		c.helloErr = fmt.Errorf("providerproto: handshake: %w", err)
		c.mu.Unlock()
		close(c.helloDone)
		c.shutdown(fmt.Errorf("handshake failed: %w", err))
		return
	}
	close(c.helloDone)
}

func newFiles(fds []int) []*os.File {
	if len(fds) == 0 {
		return nil
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "providerproto-fd-"+strconv.Itoa(fd))
	}
	return files
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			_ = f.Close()
		}
	}
}

// appendLimited appends b to msg, a message being assembled, which never
// holds more than MaxMessageSize bytes: unlike append, it never grows
// msg's capacity beyond that, so that a peer cannot make the receiver
// allocate more. The caller checks that the result fits.
func appendLimited(msg, b []byte) []byte {
	if need := len(msg) + len(b); need > cap(msg) {
		grown := make([]byte, len(msg), min(max(need, 2*cap(msg)), max(need, MaxMessageSize)))
		copy(grown, msg)
		msg = grown
	}
	return append(msg, b...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fileFDs returns the descriptors of files without changing their blocking
// mode (as File.Fd would). They stay valid while files are open.
func fileFDs(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for i, f := range files {
		if f == nil {
			return nil, fmt.Errorf("file %d is nil", i)
		}
		sc, err := f.SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("file %d (%s): %w", i, f.Name(), err)
		}
		if err := sc.Control(func(fd uintptr) { fds = append(fds, int(fd)) }); err != nil {
			return nil, fmt.Errorf("file %d (%s): %w", i, f.Name(), err)
		}
	}
	return fds, nil
}
