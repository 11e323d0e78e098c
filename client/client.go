package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/netext/netext/apitype"
)

// maxResponse bounds the size of a response body the client reads.
const maxResponse = 64 << 20

// responseTimeout bounds the wait for the daemon's answer to a request
// (its status line and headers; a watch stream's events may come later).
// It is longer than any deadline the daemon keeps for a request (the
// session's longest is 30 s), so it ends only the wait on a daemon that
// stalls, which would otherwise hang a caller without a deadline of its
// own. A variable for tests.
var responseTimeout = 2 * time.Minute

// Client talks to netextd. Its zero value is ready to use: it connects to
// the socket named by $NETEXT_SOCKET, or apitype.DefaultSocketPath. A
// Client is safe for concurrent use; its fields must not change after the
// first call.
type Client struct {
	// Socket is the path of the daemon's socket; empty means
	// $NETEXT_SOCKET or apitype.DefaultSocketPath.
	Socket string
	// Dial, if set, connects to the daemon instead of dialing Socket.
	Dial func(ctx context.Context) (net.Conn, error)

	once sync.Once
	hc   *http.Client
}

// SocketPath returns the socket path the client uses.
func (c *Client) SocketPath() string {
	if c.Socket != "" {
		return c.Socket
	}
	if p := os.Getenv(apitype.SocketEnv); p != "" {
		return p
	}
	return apitype.DefaultSocketPath
}

func (c *Client) http() *http.Client {
	c.once.Do(func() {
		path := c.SocketPath()
		dial := c.Dial
		if dial == nil {
			dial = func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			}
		}
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				conn, err := dial(ctx)
				if err != nil {
					return nil, dialError(path, err)
				}
				return conn, nil
			},
			// The daemon authorizes per connection, connections over a
			// unix socket are cheap, and no idle connection (with its
			// goroutines) outlives a call.
			DisableKeepAlives:     true,
			ResponseHeaderTimeout: responseTimeout,
		}}
	})
	return c.hc
}

// UnreachableError is returned when the daemon's socket is missing or
// nobody listens on it.
type UnreachableError struct {
	Socket string
	Err    error
}

// Error says how to fix it.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach netextd at %s: is netextd running? (start it with `systemctl start netextd`)", e.Socket)
}

// Unwrap returns the dial error.
func (e *UnreachableError) Unwrap() error { return e.Err }

func dialError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return &UnreachableError{Socket: path, Err: err}
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot connect to netextd at %s: permission denied (check the permissions of its directory): %w", path, err)
	}
	return fmt.Errorf("connecting to netextd at %s: %w", path, err)
}

// IsUnreachable reports whether err says the daemon could not be reached.
func IsUnreachable(err error) bool {
	var e *UnreachableError
	return errors.As(err, &e)
}

// IsNotFound reports whether err is the daemon's notFound error.
func IsNotFound(err error) bool { return apitype.IsCode(err, apitype.CodeNotFound) }

// IsExists reports whether err is the daemon's exists error.
func IsExists(err error) bool { return apitype.IsCode(err, apitype.CodeExists) }

// IsStale reports whether err is the daemon's stale error: the
// configuration changed since it was read.
func IsStale(err error) bool { return apitype.IsCode(err, apitype.CodeStale) }

// IsForbidden reports whether err is the daemon's forbidden error.
func IsForbidden(err error) bool { return apitype.IsCode(err, apitype.CodeForbidden) }

// IsInvalid reports whether err is the daemon's invalid error.
func IsInvalid(err error) bool { return apitype.IsCode(err, apitype.CodeInvalid) }

// IsConflict reports whether err is the daemon's conflict error.
func IsConflict(err error) bool { return apitype.IsCode(err, apitype.CodeConflict) }

// IsDisabled reports whether err is the daemon's disabled error.
func IsDisabled(err error) bool { return apitype.IsCode(err, apitype.CodeDisabled) }

// IsTimeout reports whether err is the daemon's timeout error.
func IsTimeout(err error) bool { return apitype.IsCode(err, apitype.CodeTimeout) }

// Code returns the code of the daemon's error in err, or "".
func Code(err error) apitype.ErrorCode {
	var e *apitype.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// do sends a request with body (JSON-encoded unless nil) and decodes a
// successful response into out (unless nil). Errors the daemon reports
// are returned as *apitype.Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("reading the response of %s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns a successful response, whose body the
// caller closes.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	// path is escaped already.
	u := "http://netextd" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("making the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		var ue *UnreachableError
		if errors.As(err, &ue) {
			return nil, ue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, responseError(resp)
}

// responseError reads the *apitype.Error of a failed response, or makes
// one from its status.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e apitype.Error
	if err := json.Unmarshal(data, &e); err == nil && e.Code != "" {
		return &e
	}
	msg := string(bytes.TrimSpace(data))
	if msg == "" {
		msg = resp.Status
	}
	return &apitype.Error{Code: apitype.CodeForStatus(resp.StatusCode), Message: msg}
}

func configPath(name string) string  { return "/v0/configurations/" + url.PathEscape(name) }
func sessionPath(name string) string { return "/v0/sessions/" + url.PathEscape(name) }

// Configurations returns every configuration, sorted by name.
func (c *Client) Configurations(ctx context.Context) ([]apitype.Configuration, error) {
	var out apitype.ConfigurationList
	err := c.do(ctx, http.MethodGet, "/v0/configurations", nil, nil, &out)
	return out.Configurations, err
}

// Configuration returns the configuration of that name.
func (c *Client) Configuration(ctx context.Context, name string) (apitype.Configuration, error) {
	var out apitype.Configuration
	err := c.do(ctx, http.MethodGet, configPath(name), nil, nil, &out)
	return out, err
}

// CreateConfiguration saves a new configuration, and secret unless nil,
// and returns the configuration as saved.
func (c *Client) CreateConfiguration(ctx context.Context, conf apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error) {
	var out apitype.Configuration
	err := c.do(ctx, http.MethodPost, "/v0/configurations", nil, apitype.CreateRequest{Configuration: conf, Secret: secret}, &out)
	return out, err
}

// UpdateConfiguration replaces the configuration conf.Name, which must
// still be at conf.Generation (else IsStale), and the secret unless nil.
func (c *Client) UpdateConfiguration(ctx context.Context, conf apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error) {
	var out apitype.Configuration
	err := c.do(ctx, http.MethodPut, configPath(conf.Name), nil, apitype.UpdateRequest{Configuration: conf, Secret: secret}, &out)
	return out, err
}

// DeleteConfiguration removes a configuration; generation 0 removes it
// whatever its generation.
func (c *Client) DeleteConfiguration(ctx context.Context, name string, generation uint64) error {
	var q url.Values
	if generation != 0 {
		q = url.Values{"generation": {strconv.FormatUint(generation, 10)}}
	}
	return c.do(ctx, http.MethodDelete, configPath(name), q, nil, nil)
}

// SetEnabled enables or disables a configuration; generation 0 skips the
// staleness check.
func (c *Client) SetEnabled(ctx context.Context, name string, enabled bool, generation uint64) (apitype.Configuration, error) {
	op := "/disable"
	if enabled {
		op = "/enable"
	}
	var out apitype.Configuration
	err := c.do(ctx, http.MethodPost, configPath(name)+op, nil, apitype.EnableRequest{Generation: generation}, &out)
	return out, err
}

// Start begins connecting a session and returns its status, without
// waiting for it to connect: use Watch for that.
func (c *Client) Start(ctx context.Context, name string, options map[string]any) (apitype.SessionStatus, error) {
	var out apitype.SessionStatus
	err := c.do(ctx, http.MethodPost, sessionPath(name)+"/start", nil, apitype.StartRequest{Options: options}, &out)
	return out, err
}

// Stop begins stopping a session with reason (empty means
// apitype.StopReasonUserInitiated) and returns its status.
func (c *Client) Stop(ctx context.Context, name, reason string) (apitype.SessionStatus, error) {
	var out apitype.SessionStatus
	err := c.do(ctx, http.MethodPost, sessionPath(name)+"/stop", nil, apitype.StopRequest{Reason: reason}, &out)
	return out, err
}

// Statuses returns the status of every session, sorted by name.
func (c *Client) Statuses(ctx context.Context) ([]apitype.SessionStatus, error) {
	var out apitype.StatusList
	err := c.do(ctx, http.MethodGet, "/v0/sessions", nil, nil, &out)
	return out.Sessions, err
}

// Status returns the status of one session.
func (c *Client) Status(ctx context.Context, name string) (apitype.SessionStatus, error) {
	var out apitype.SessionStatus
	err := c.do(ctx, http.MethodGet, sessionPath(name), nil, nil, &out)
	return out, err
}

// LastError returns why a session last disconnected, or nil.
func (c *Client) LastError(ctx context.Context, name string) (*apitype.LastError, error) {
	var out apitype.LastErrorResponse
	err := c.do(ctx, http.MethodGet, sessionPath(name)+"/last-error", nil, nil, &out)
	return out.LastError, err
}

// SendMessage sends data to the provider of a running session and returns
// its reply.
func (c *Client) SendMessage(ctx context.Context, name string, data []byte) ([]byte, error) {
	var out apitype.MessageResponse
	err := c.do(ctx, http.MethodPost, sessionPath(name)+"/message", nil, apitype.MessageRequest{Data: data}, &out)
	return out.Data, err
}

// Providers returns the installed providers.
func (c *Client) Providers(ctx context.Context) ([]apitype.ProviderInfo, error) {
	var out apitype.ProviderList
	err := c.do(ctx, http.MethodGet, "/v0/providers", nil, nil, &out)
	return out.Providers, err
}
