// Package apitype holds the JSON types of netextd's control API, shared by
// the server (package localapi) and the Go client (package client):
// requests, responses, watch events and errors.
//
// The types are plain data with no behaviour beyond encoding, so that a
// program in another language can read this package as the schema of the
// API. Field names are the JSON names in camelCase; times are RFC 3339
// strings; byte strings are base64, as encoding/json writes them.
//
// The API itself (endpoints, methods, permissions, the watch stream) is
// documented in package localapi.
//
// # Configurations and secrets
//
// A [Configuration] as the API shows it never carries a secret: only
// HasSecret says whether one is stored. Requests that create or update a
// configuration may carry a [Secret] beside it. Secret redacts itself in
// fmt verbs and log/slog output, but not in JSON: it travels to the
// daemon in the request body.
//
// # Errors
//
// Every error response is an [Error] with a [ErrorCode] that programs
// branch on, and a message for people. [Error] implements error, and
// errors.Is matches it against the sentinels ([ErrNotFound], [ErrStale],
// ...) by code.
package apitype
