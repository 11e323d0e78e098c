// Package localapi serves netextd's control API: HTTP and JSON over a unix
// socket. Apps, the netext command and the Go client (package client) use
// it to manage saved VPN configurations and their sessions; the request
// and response types are in package apitype. This comment is the API's
// reference.
//
// # Socket and permissions
//
// The daemon listens on /run/netext/netextd.sock (apitype.DefaultSocketPath;
// clients honour $NETEXT_SOCKET). [Listen] creates the socket with mode 0666
// so that any local user can connect, after checking that no other daemon
// answers on an existing socket file. Authorization is per request: the
// caller's uid, gid and pid are read from the kernel (SO_PEERCRED) once,
// when the connection is accepted.
//
//   - root, and members of the group netext (apitype.DefaultGroup, looked up
//     by name when the server starts; Options.Group changes it), may do
//     everything;
//   - everyone else may read: list and show configurations (which never
//     contain secrets), session statuses, last errors, providers, and
//     watch. Anything else is refused with 403 and code "forbidden", with a
//     message saying who may.
//
// Requests carrying an Origin or Referer header (web browsers) are refused.
//
// # Requests and errors
//
// Request bodies are JSON objects of at most 1 MiB (413 "tooLarge" beyond).
// Decoding is strict: an unknown field, a value of the wrong type or
// trailing data is 400 "invalid" naming the field. Every error response is
// an apitype.Error:
//
//	HTTP/1.1 409 Conflict
//	{"code": "stale", "message": "configuration office was changed since generation 3 (now 4): reload it and try again"}
//
// Codes and statuses: invalid 400, forbidden 403, notFound 404 (unknown
// configuration, session, provider or endpoint), methodNotAllowed 405,
// exists / stale / conflict / disabled 409, tooLarge 413, busy 429,
// internal 500, providerError 502, unavailable 503, timeout 504. Clients
// branch on the code, never on the message.
//
// # Endpoints
//
// All paths start with /v0/. NAME is a configuration's name (path-escaped).
// "write" marks what needs root or the netext group.
//
//	GET    /v0/configurations                  → ConfigurationList
//	POST   /v0/configurations                  CreateRequest → 201 Configuration           write
//	GET    /v0/configurations/NAME             → Configuration
//	PUT    /v0/configurations/NAME             UpdateRequest → Configuration               write
//	DELETE /v0/configurations/NAME[?generation=N] → 204                                     write
//	POST   /v0/configurations/NAME/enable      [EnableRequest] → Configuration             write
//	POST   /v0/configurations/NAME/disable     [EnableRequest] → Configuration             write
//	GET    /v0/sessions                        → StatusList
//	GET    /v0/sessions/NAME                   → SessionStatus
//	POST   /v0/sessions/NAME/start             [StartRequest] → SessionStatus              write
//	POST   /v0/sessions/NAME/stop              [StopRequest] → SessionStatus               write
//	POST   /v0/sessions/NAME/message           MessageRequest → MessageResponse            write
//	GET    /v0/sessions/NAME/last-error        → LastErrorResponse
//	GET    /v0/providers                       → ProviderList
//	GET    /v0/watch[?since=N&instance=ID]     → stream of Event, one JSON object per line
//
// Bodies in brackets may be omitted. Configurations carry a generation:
// an update must send the generation it was based on (required; a
// different one is 409 "stale": read the configuration again, reapply the
// change, retry). Delete and enable/disable check the generation only when
// one is given. Start returns as soon as the session is connecting (or
// already running); it does not wait for the tunnel: watch for that.
// Starting a disabled configuration is 409 "disabled".
//
// For example, with curl:
//
//	curl --unix-socket /run/netext/netextd.sock http://netextd/v0/sessions
//	curl --unix-socket /run/netext/netextd.sock -X POST http://netextd/v0/sessions/office/start \
//	     -d '{"options": {"verbose": true}}'
//
// # Watching
//
// GET /v0/watch streams JSON lines (Content-Type application/x-ndjson),
// each an apitype.Event. Every status change of any session has a sequence
// number: 1 for the first change after the daemon started, one more for
// each change after. A stream begins with the current state and then
// follows changes, so a client reads the state and subscribes in one
// atomic step and never misses a transition:
//
//	{"type":"snapshot","seq":41,"status":{"name":"home","status":"disconnected",...}}
//	{"type":"snapshot","seq":41,"status":{"name":"office","status":"connected",...}}
//	{"type":"synced","seq":41,"instance":"9f2c...","reset":true}
//	{"type":"change","seq":42,"status":{"name":"office","status":"disconnecting",...}}
//	{"type":"change","seq":43,"status":{"name":"office","status":"disconnected",...}}
//
// Snapshot events carry the number of the last change they include. After
// "synced", change events carry consecutive numbers: a client that sees a
// number other than the previous one plus one has missed a change and must
// reconnect. A status of "invalid" means the configuration was removed.
//
// Resuming: a client that lost its stream reconnects with since (the last
// number it saw) and instance (from the synced event). If the daemon is
// the same run and still holds every change after since (the last 1024),
// the stream begins with those changes instead of a snapshot, then
// "synced" with reset false. Otherwise it begins with a snapshot and
// "synced" with reset true: the client replaces its whole view, and
// sessions missing from the snapshot no longer exist.
//
// Slow readers: the daemon never waits for a watcher. Each stream has a
// buffer of 256 changes; a watcher that falls further behind is dropped.
// It still receives the changes it had buffered, and then a final event
// {"type":"error","seq":N,"error":{"code":"overflow",...}} where N is the
// last change it received: resume from N as above. A client that does not
// read at all for 10 seconds is disconnected.
//
// # Serving
//
// The daemon implements [Backend], publishes status changes to an
// [Events], and serves:
//
//	events := localapi.NewEvents(localapi.EventsOptions{})
//	srv := localapi.New(backend, localapi.Options{Events: events, Logger: log})
//	ln, err := localapi.Listen(apitype.DefaultSocketPath)
//	...
//	err = srv.Serve(ctx, ln)
//
// Package localapitest has an in-memory Backend for tests.
package localapi
