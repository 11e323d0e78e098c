// Package cli implements the netext command: a thin client of netextd's
// control API that talks to the daemon only through package client.
//
//	netext [--socket PATH] COMMAND [ARGS]
//
//	config list [--quiet]                   list saved configurations
//	config show NAME                        show one (never its secret)
//	config add NAME [flags]                 save a new one from flags and/or --file FILE
//	config import FILE.conf [--name NAME]   save a new WireGuard one from a wg-quick file
//	config edit NAME [flags]                change one: --file replaces it, flags change fields
//	config remove NAME [--generation N]     remove one and its secret
//	config enable NAME / config disable NAME
//	start NAME [--option KEY=VALUE]...      start a session and wait until it is connected
//	stop NAME [--reason REASON]             stop a session and wait until it is disconnected
//	status [NAME]                           session status: a table, or one in detail
//	watch                                   the status of every session, then every change
//	message NAME DATA|-                     send bytes to a running provider, print its reply
//	providers                               list installed providers
//	completion bash|zsh|fish                print a shell completion script
//	demo [--duration DURATION]              a WireGuard tunnel between throwaway namespaces (root)
//
// Every command takes --json, which prints the API's JSON types (see
// package apitype) instead of aligned text; errors then go to stdout as
// {"error": {"code": ..., "message": ...}}. Without --json, errors go to
// stderr as "netext: MESSAGE".
//
// config import reads a wg-quick(8) file with package wgquick and saves a
// configuration of netext's WireGuard provider ([WireGuardProviderID]):
// the server address is the first peer endpoint, the private and preshared
// keys go to the secret store (never into the configuration, the command
// line or any output), lines that cannot apply are skipped with a warning
// naming the line on stderr, and a malformed file saves nothing and
// fails with every problem and its line number. The configuration is
// enabled unless --enabled=false.
//
// status NAME of a running session also asks its provider for "stats"; a
// reply in the WireGuard provider's shape adds a table of the peers (last
// handshake, endpoint, bytes received and sent), and --json adds the reply
// as providerStats. Other replies, and callers who may not send messages,
// get the status alone. A disconnected session whose leak protection
// still holds shows "traffic blocked" with the protection and the stop
// that lifts it.
//
// Secrets are read from a file or stdin (--secret-file FILE or -), never
// from the command line, where other users can see them. Start options
// are JSON when they parse as JSON (--option mtu=1380 is a number,
// --option name=office a string).
//
// start and stop open a watch stream before they send their request, so
// that they see every change that follows it; on a terminal a progress
// indicator shows the session's state until it ends in the final state or
// the error. --no-wait returns at once.
//
// Exit codes ([ExitOK] ...): 0 success; 1 failure (such as a session that
// did not connect); 2 bad command line; 3 netextd cannot be reached; 4 no
// such configuration, session or provider; 5 permission denied (changes
// need root or group netext); 6 conflict: the name exists, the
// configuration changed meanwhile (read it again), it is disabled, or the
// session's state does not allow the request; 7 timeout.
//
// One file holds each subcommand. [Run] takes the arguments and
// [Options] with the standard streams, so tests capture the output.
package cli
