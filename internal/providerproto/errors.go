package providerproto

import (
	"context"
	"errors"
)

// Code classifies the error in a reply.
type Code string

// Error codes. Receivers treat a code they do not know like CodeFailed.
const (
	// CodeInvalid: the request is well formed but its content is not
	// acceptable, such as network settings that fail validation
	// (NETunnelProviderError.networkSettingsInvalid).
	CodeInvalid Code = "invalid"
	// CodeCanceled: the operation was canceled before it completed, such as
	// settings superseded by a stop (networkSettingsCanceled).
	CodeCanceled Code = "canceled"
	// CodeFailed: the operation was attempted and failed, such as settings
	// that the system could not apply (networkSettingsFailed), or a start
	// that the provider could not complete.
	CodeFailed Code = "failed"
	// CodeUnsupported: the receiver does not know the request type, or
	// does not speak any of the sender's protocol versions.
	CodeUnsupported Code = "unsupported"
	// CodeTimeout: the operation did not complete in the time allowed.
	CodeTimeout Code = "timeout"
	// CodeProtocol: the request breaks the protocol (malformed JSON, a
	// missing field, a wrong number of file descriptors, a message out of
	// order).
	CodeProtocol Code = "protocol"
	// CodeInternal: the receiver failed for a reason of its own (a bug).
	CodeInternal Code = "internal"
)

// Error is the error of a reply. A failed [Conn.Request] returns it
// (wrapped), so callers use [errors.As] or [IsCode] to read the code.
type Error struct {
	// Code classifies the error.
	Code Code `json:"code"`
	// Message describes the error for people. It may be empty.
	Message string `json:"message,omitempty"`
}

// NewError returns an *Error with the given code and message.
func NewError(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Error returns "code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code and either the
// same message or none, so that errors.Is(err, &Error{Code: CodeInvalid})
// matches every invalid-error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// IsCode reports whether err is or wraps an *Error with the given code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// ToError turns err into the error of a reply: an *Error in err's chain is
// used as it is, context cancellation becomes CodeCanceled, an expired
// deadline CodeTimeout, and anything else CodeFailed with err's text.
func ToError(err error) *Error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return &Error{Code: e.Code, Message: e.Message}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeCanceled, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeTimeout, Message: err.Error()}
	}
	return &Error{Code: CodeFailed, Message: err.Error()}
}

// ErrClosed is wrapped by every error that reports a closed connection,
// together with the cause, such as [ErrPeerClosed] when the peer process
// exited.
var ErrClosed = errors.New("providerproto: connection closed")

// ErrPeerClosed is the cause of a connection closed by the peer, which is
// what happens when the peer process exits.
var ErrPeerClosed = errors.New("peer closed the connection")

// errClosedLocally is the cause of a connection closed by [Conn.Close].
var errClosedLocally = errors.New("closed by Close")
