package localapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"time"

	"github.com/netext/netext/apitype"
)

// Defaults of [Options].
const (
	DefaultMaxBodySize       = 1 << 20
	DefaultWatchWriteTimeout = 10 * time.Second
	DefaultShutdownTimeout   = 5 * time.Second
)

// Options configures a [Server]. The zero value is usable.
type Options struct {
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// Events is where the watch endpoint reads status changes from; nil
	// makes a private Events (see Server.Events).
	Events *Events
	// Group names the group whose members may change configurations and
	// sessions, besides root. It is looked up once, in New; when it does
	// not exist only root may. Empty means apitype.DefaultGroup.
	Group string
	// Identify returns the identity of a connection's peer; nil reads
	// SO_PEERCRED. Tests inject their own.
	Identify func(net.Conn) (Identity, error)
	// UserGroups returns the groups of a user in the group database; nil
	// uses os/user.
	UserGroups func(uid uint32) ([]uint32, error)
	// MaxBodySize limits request bodies; 0 means DefaultMaxBodySize.
	MaxBodySize int64
	// WatchWriteTimeout bounds each write to a watch stream: a client that
	// does not read for that long is disconnected. 0 means
	// DefaultWatchWriteTimeout.
	WatchWriteTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// after its context is done; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Server serves the control API of a [Backend]. Make one with [New].
type Server struct {
	backend    Backend
	events     *Events
	log        *slog.Logger
	identify   func(net.Conn) (Identity, error)
	userGroups func(uint32) ([]uint32, error)
	group      string
	gid        uint32 // of group, when groupOK
	groupOK    bool
	maxBody    int64
	writeTO    time.Duration
	shutdownTO time.Duration
	mux        *http.ServeMux
}

// New returns a server of b. It looks up the write group now.
func New(b Backend, opts Options) *Server {
	s := &Server{
		backend:    b,
		events:     opts.Events,
		log:        opts.Logger,
		identify:   opts.Identify,
		userGroups: opts.UserGroups,
		group:      opts.Group,
		maxBody:    opts.MaxBodySize,
		writeTO:    opts.WatchWriteTimeout,
		shutdownTO: opts.ShutdownTimeout,
	}
	if s.events == nil {
		s.events = NewEvents(EventsOptions{})
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.identify == nil {
		s.identify = peerIdentity
	}
	if s.userGroups == nil {
		s.userGroups = lookupUserGroups
	}
	if s.group == "" {
		s.group = apitype.DefaultGroup
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodySize
	}
	if s.writeTO <= 0 {
		s.writeTO = DefaultWatchWriteTimeout
	}
	if s.shutdownTO <= 0 {
		s.shutdownTO = DefaultShutdownTimeout
	}
	if g, err := user.LookupGroup(s.group); err != nil {
		s.log.Warn("write group not found: only root may change configurations and sessions", "group", s.group, "err", err)
	} else if gid, err := strconv.ParseUint(g.Gid, 10, 32); err == nil {
		s.gid, s.groupOK = uint32(gid), true
	}
	s.mux = http.NewServeMux()
	for _, r := range routes {
		s.mux.HandleFunc(r.pattern, func(w http.ResponseWriter, req *http.Request) { r.serve(s, w, req) })
	}
	return s
}

// Events returns the Events the watch endpoint reads from.
func (s *Server) Events() *Events { return s.events }

// Serve serves the API on ln until ctx is done, then stops: watch streams
// end, and requests in flight get ShutdownTimeout to finish. It closes ln.
// It returns nil after ctx is done, or the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       s.connContext,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serving the control API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTO)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving the control API: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("stopping the control API: %w", err)
	}
	return nil
}

// ServeHTTP implements http.Handler. Requests that come from a web browser
// (with an Origin or Referer header) are refused. Requests that did not
// arrive through Serve have no identity and may only read.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
		writeError(w, apitype.Errorf(apitype.CodeForbidden, "requests from web browsers are refused"))
		return
	}
	s.mux.ServeHTTP(w, r)
}
