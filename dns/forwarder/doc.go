// Package forwarder is netext's built-in DNS forwarder: a small DNS
// server, on a loopback address such as 127.0.0.153:53 or on the tunnel's
// own address, that sends each query to the servers of the scope its name
// falls in. It does what the system resolver cannot: split DNS without
// systemd-resolved, DNS over HTTPS, and DNS over TLS where the system's
// resolver lacks it.
//
// # Rules
//
// [Rules] hold an ordered list of [Scope]s, one per tunnel, and a default
// scope with the system's original servers. Each scope has match domains,
// upstream servers, a [Dialer] that reaches them (through the tunnel, or
// on the underlay for the default scope) and an allowFailover flag, the
// counterparts of Apple's NEDNSSettings matchDomains, servers and
// allowFailover:
//
//   - the scope whose domain is the longest suffix of the query name (on
//     label boundaries) answers it; the empty domain "" matches every name,
//     which makes a full-tunnel scope;
//   - a name that no scope matches goes to the default scope;
//   - a query for a scope's domain goes to that scope's servers only. When
//     all of them fail (timeout, network or protocol error, SERVFAIL or
//     REFUSED; an NXDOMAIN or any other answer is not a failure) the client
//     gets SERVFAIL, unless the scope allows failover: then, and only then,
//     the default scope's servers are asked.
//
// A domain may belong to one scope only: rules that share one are
// rejected, not merged. So is an upstream at the forwarder's own address
// (a resolv.conf left pointing at the forwarder, read back as the
// system's servers), since its queries would loop. [Forwarder.SetRules] swaps the rules atomically;
// invalid rules leave the current ones in place and return a
// [*RulesError] naming each bad field.
//
// # Upstreams
//
// An [Upstream] speaks cleartext UDP (asking again over TCP when the
// answer is truncated), TCP, DNS over TLS (RFC 7858) or DNS over HTTPS
// (RFC 8484: POST of application/dns-message, over HTTP/2 when the server
// offers it). Certificates are checked against the system's roots, or
// Options.RootCAs, and against the server name (TLS) or the URL's host
// (HTTPS); without a server name a TLS server's certificate must carry
// its IP address. The forwarder never resolves names itself: an HTTPS
// upstream whose URL names a host also gives the address to connect to.
// Proxies from the environment are not used. TCP and TLS connections
// are kept for reuse, a few per upstream for a few seconds, and HTTPS
// ones by the HTTP client; rules set by SetRules start with fresh ones.
//
// Each query gets a fresh random message ID upstream (0 over HTTPS, as
// RFC 8484 recommends); answers that do not match the ID and question are
// dropped, and the client's ID is written back into the answer, which is
// otherwise passed on byte for byte. EDNS(0) options travel unchanged in
// both directions. An answer larger than a UDP client accepts (512 bytes,
// or its EDNS(0) buffer size) is truncated with TC set, so that the client
// asks again over TCP. Zone transfers are refused.
//
// # Limits
//
// Each try of an upstream is bounded by Options.UpstreamTimeout, each
// client query by Options.QueryTimeout, failover included (a scope that
// allows failover gets two thirds of it, the default scope the rest); an
// upstream is tried at most Options.Attempts times per query. At most
// Options.MaxInFlight queries are resolved at once, and further ones get
// SERVFAIL at once; at most Options.MaxTCPConns client TCP connections are
// served at once. The forwarder starts no goroutine of its own per query
// beyond what the DNS server package does per request, and all of them
// end with the query. [Forwarder.Close] cuts queries in flight short and
// returns when nothing of the forwarder runs any more.
//
// # Observability
//
// [Forwarder.Stats] returns counters per scope (queries, answers,
// failures, failovers) and per upstream (queries, answers, failures).
// They show, for instance, that no query for a tunnel's domain ever
// reached the default scope's servers. The injected *slog.Logger gets one
// debug record per query with its name, type, scope, upstream and result;
// query names appear at debug level only, and an HTTPS upstream's URL is
// shortened to its host, since its path may carry a credential.
package forwarder
