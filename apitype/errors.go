package apitype

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorCode classifies an [Error]. Programs branch on codes, never on
// messages.
type ErrorCode string

// Error codes, with the HTTP status each travels with.
const (
	// CodeInvalid (400): the request is malformed or a field has a bad
	// value; the message names the field.
	CodeInvalid ErrorCode = "invalid"
	// CodeForbidden (403): the caller may read but not change anything.
	CodeForbidden ErrorCode = "forbidden"
	// CodeNotFound (404): no configuration, session, provider or endpoint
	// of that name.
	CodeNotFound ErrorCode = "notFound"
	// CodeMethod (405): the endpoint exists but not with this method.
	CodeMethod ErrorCode = "methodNotAllowed"
	// CodeExists (409): a configuration of that name already exists.
	CodeExists ErrorCode = "exists"
	// CodeStale (409): the configuration was changed since the generation
	// the request carries: read it again and retry (Apple's
	// configurationStale).
	CodeStale ErrorCode = "stale"
	// CodeConflict (409): the request does not fit the current state, such
	// as starting a session that is still disconnecting.
	CodeConflict ErrorCode = "conflict"
	// CodeDisabled (409): the configuration is not enabled, so its session
	// cannot start (Apple's configurationDisabled).
	CodeDisabled ErrorCode = "disabled"
	// CodeTooLarge (413): the request body is larger than the server
	// accepts.
	CodeTooLarge ErrorCode = "tooLarge"
	// CodeBusy (429): the daemon is doing too much already; retry later.
	CodeBusy ErrorCode = "busy"
	// CodeProviderError (502): the provider failed or answered with an
	// error; the message is the provider's.
	CodeProviderError ErrorCode = "providerError"
	// CodeUnavailable (503): the daemon cannot serve the request now, for
	// example because the provider is not installed or the daemon is
	// shutting down.
	CodeUnavailable ErrorCode = "unavailable"
	// CodeTimeout (504): the daemon or the provider did not finish in
	// time.
	CodeTimeout ErrorCode = "timeout"
	// CodeOverflow: a watch stream fell too far behind and was dropped
	// (only in a watch stream's final event).
	CodeOverflow ErrorCode = "overflow"
	// CodeInternal (500): a bug or an unexpected failure in the daemon.
	CodeInternal ErrorCode = "internal"
)

var codeStatus = map[ErrorCode]int{
	CodeInvalid:       http.StatusBadRequest,
	CodeForbidden:     http.StatusForbidden,
	CodeNotFound:      http.StatusNotFound,
	CodeMethod:        http.StatusMethodNotAllowed,
	CodeExists:        http.StatusConflict,
	CodeStale:         http.StatusConflict,
	CodeConflict:      http.StatusConflict,
	CodeDisabled:      http.StatusConflict,
	CodeTooLarge:      http.StatusRequestEntityTooLarge,
	CodeBusy:          http.StatusTooManyRequests,
	CodeProviderError: http.StatusBadGateway,
	CodeUnavailable:   http.StatusServiceUnavailable,
	CodeTimeout:       http.StatusGatewayTimeout,
	CodeOverflow:      http.StatusServiceUnavailable,
	CodeInternal:      http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status that responses with code c carry:
// 500 for codes it does not know.
func (c ErrorCode) HTTPStatus() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus returns the code of an HTTP status, for responses that do
// not carry an [Error] body: the first code listed above with that status,
// or CodeInternal.
func CodeForStatus(status int) ErrorCode {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalid
	case http.StatusForbidden, http.StatusUnauthorized:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethod
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusTooManyRequests:
		return CodeBusy
	case http.StatusBadGateway:
		return CodeProviderError
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	case http.StatusGatewayTimeout:
		return CodeTimeout
	}
	return CodeInternal
}

// Error is the body of every error response, and the error a watch stream
// ends with.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

// Error returns the message, or the code when there is no message.
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Is reports whether target is an *Error with the same code and no
// message, such as the sentinels below, so that
// errors.Is(err, apitype.ErrNotFound) matches every not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Errorf returns an *Error with code and a formatted message. The message
// is for people: it names the field or the thing concerned.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// IsCode reports whether err is or wraps an *Error with code.
func IsCode(err error, code ErrorCode) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Sentinels for errors.Is; each matches every *Error with its code.
var (
	ErrInvalid       = &Error{Code: CodeInvalid}
	ErrForbidden     = &Error{Code: CodeForbidden}
	ErrNotFound      = &Error{Code: CodeNotFound}
	ErrExists        = &Error{Code: CodeExists}
	ErrStale         = &Error{Code: CodeStale}
	ErrConflict      = &Error{Code: CodeConflict}
	ErrDisabled      = &Error{Code: CodeDisabled}
	ErrTooLarge      = &Error{Code: CodeTooLarge}
	ErrBusy          = &Error{Code: CodeBusy}
	ErrProviderError = &Error{Code: CodeProviderError}
	ErrUnavailable   = &Error{Code: CodeUnavailable}
	ErrTimeout       = &Error{Code: CodeTimeout}
	ErrOverflow      = &Error{Code: CodeOverflow}
	ErrInternal      = &Error{Code: CodeInternal}
)
