// Package providerproto implements the wire protocol between netextd and a
// provider process, for both ends: message encoding, framing, and passing
// file descriptors. docs/provider-protocol.md specifies the protocol for
// implementers in other languages; this comment summarizes it.
//
// # Transport
//
// The daemon creates an AF_UNIX SOCK_SEQPACKET socket pair ([Socketpair])
// and starts the provider with one end as file descriptor 3 (the first of
// exec.Cmd.ExtraFiles). The environment variable NETEXT_PROVIDER_FD ([EnvFD])
// may name another number; [FromEnv] opens it.
//
// A message is one UTF-8 JSON object of at most 16 MiB ([MaxMessageSize]),
// enough for network settings with 100,000 routes.
// It travels as one datagram when it fits in 64 KiB ([MaxDatagramSize]),
// and otherwise as several: every datagram but the last starts with the
// byte '+', which is not part of the message, and the last datagram never
// starts with '+'. A receiver appends datagrams until one does not start
// with '+'. Up to 4 file descriptors ([MaxFiles]) travel with a message as
// SCM_RIGHTS on its last datagram. Receivers use MSG_CMSG_CLOEXEC, and close
// the descriptors of every message they drop.
//
// # Messages
//
// Every message has a type. A request carries an id (numbered from 1 by its
// sender; each side numbers its own) and gets exactly one reply, of type
// "reply" with the same id, carrying either a body or an [Error]. A
// notification carries no id and gets no reply. Either side may send
// requests and notifications. A request of an unknown type is answered
// with the error code "unsupported"; a notification of an unknown type is
// dropped. Unknown fields are ignored.
//
// The provider starts with a "hello" request that names the range of
// protocol versions it speaks ([Hello]); the daemon replies with the
// version chosen ([Welcome]), or with an "unsupported" error naming both
// ranges, after which it closes the connection.
//
//	daemon → provider                     provider → daemon
//	start         request  [Start]        hello        request  [Hello] → [Welcome]
//	stop          request  [Stop]         setSettings  request  [SetSettings] → [SetSettingsReply] (+ tunnel fd, first time)
//	appMessage    request  [AppMessage]   protect      request  (+ 1 socket fd)
//	sleep         request                 reasserting  notification [Reasserting]
//	wake          notification            cancel       notification [Cancel]
//	path          notification [Path]
//	configuration notification [Configuration]
//
// # Go API
//
// A [Conn] owns one end of the socket. It runs one reader goroutine that
// matches replies to [Conn.Request] by id and passes incoming requests and
// notifications to a [Handler], in order; [Incoming.Reply] answers a request
// from any goroutine. [Conn.Hello] and [Conn.WaitHello] are the two sides of
// the handshake. [Conn.Close] fails pending requests with [ErrClosed].
//
// Sends take turns on the socket. A peer that reads nothing makes sends
// block; the context of [Conn.Request] and [Conn.Notify] bounds both the
// wait for the turn and the writing. A message cut short after its first
// datagram closes the connection, because the peer could not make sense of
// anything after it. Replies ([Incoming.Reply]) have no context and end
// only with the connection.
//
// A message that breaks the protocol is dropped (and a request answered
// with [CodeProtocol]); the connection stays open. [Config.OnProtocolError]
// hears of each one and [Conn.ProtocolErrors] counts them, so that the
// daemon can end a session whose provider misbehaves.
//
// The package is Linux only; elsewhere [New] and [Socketpair] return
// errors.ErrUnsupported.
package providerproto
