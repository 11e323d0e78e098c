package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrorCode classifies a session's disconnect error (compare Apple's
// NEVPNConnectionError).
type ErrorCode string

// Error codes.
const (
	// CodeProviderFailed: the provider reported a failure, in its answer to
	// start or with a cancel (Apple's provider errors). The message is the
	// provider's own.
	CodeProviderFailed ErrorCode = "providerFailed"
	// CodeProviderExited: the provider process ended or closed its
	// connection unasked (Apple's pluginFailed).
	CodeProviderExited ErrorCode = "providerExited"
	// CodeTimeout: the provider did not answer in the time allowed.
	CodeTimeout ErrorCode = "timeout"
	// CodeProtocol: the provider broke the protocol: a failed handshake,
	// malformed messages, or more messages than the limits allow.
	CodeProtocol ErrorCode = "protocol"
	// CodeLaunchFailed: the provider process could not be started.
	CodeLaunchFailed ErrorCode = "launchFailed"
	// CodeTeardownFailed: restoring the system after the session failed.
	CodeTeardownFailed ErrorCode = "teardownFailed"
	// CodeSettingsRefused: the host refused the provider's settings
	// (Config.Admit), for example because they clash with another
	// session's.
	CodeSettingsRefused ErrorCode = "settingsRefused"
	// CodePolicyFailed: a protection of the host (Config.Policies), such
	// as the leak protection, could not be put in place when the session
	// began to connect.
	CodePolicyFailed ErrorCode = "policyFailed"
)

// Error is why a session disconnected: Status.LastError.
type Error struct {
	Code ErrorCode
	// Message describes the error for people, such as "provider exited
	// with status 2 while connected".
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// IsCode reports whether err is or wraps an *Error with the given code.
func IsCode(err error, code ErrorCode) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func newError(code ErrorCode, msg string) *Error { return &Error{Code: code, Message: msg} }

var (
	// ErrNotConnected is returned by requests that need a connected
	// session.
	ErrNotConnected = errors.New("session: not connected")
	// ErrStopped is returned by Start when the session was stopped before
	// it connected.
	ErrStopped = errors.New("session: stopped before it connected")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("session: closed")
)

// noAnswer is the error of a request the provider did not answer within
// timeout. It matches context.DeadlineExceeded.
func noAnswer(request string, timeout time.Duration) error {
	return &noAnswerError{fmt.Sprintf("session: %s: the provider did not answer within %v", request, timeout)}
}

type noAnswerError struct{ msg string }

func (e *noAnswerError) Error() string { return e.msg }
func (e *noAnswerError) Unwrap() error { return context.DeadlineExceeded }
