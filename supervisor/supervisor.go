package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/netext/netext/internal/providerproto"
)

// DefaultMaxLineBytes is the default for Options.MaxLineBytes.
const DefaultMaxLineBytes = 4096

// Options describe a provider process to launch.
type Options struct {
	// Path is the absolute path of the provider executable. Required.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// UID and GID are the user and group the provider runs as. UID 0 is
	// refused unless AllowRoot is set. A daemon that is not root can only
	// run providers as its own user and group.
	UID, GID uint32
	// AllowRoot permits UID 0, so that the provider keeps every privilege
	// of a root daemon. It exists for tests; never set it in production.
	AllowRoot bool
	// Env is added to the provider's minimal environment, as "KEY=value"
	// entries.
	Env []string
	// Conn configures the daemon's end of the protocol connection. Its
	// Role is always providerproto.RoleDaemon; a nil Logger is replaced by
	// Logger.
	Conn providerproto.Config
	// Logger receives the provider's output lines and its life cycle
	// events. Tag it with the session, for example with Logger.With. Nil
	// discards.
	Logger *slog.Logger
	// MaxLineBytes is the longest output line logged as it is; longer ones
	// are cut. Zero means DefaultMaxLineBytes.
	MaxLineBytes int
}

func (o *Options) check() error {
	switch {
	case o.Path == "":
		return errors.New("supervisor: Options.Path: missing")
	case !filepath.IsAbs(o.Path):
		return fmt.Errorf("supervisor: Options.Path: %q is not an absolute path", o.Path)
	case o.UID == 0 && !o.AllowRoot:
		return errors.New("supervisor: Options.UID: refusing to run a provider as root (uid 0)")
	case o.MaxLineBytes < 0:
		return fmt.Errorf("supervisor: Options.MaxLineBytes: %d is negative", o.MaxLineBytes)
	}
	for i, e := range o.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("supervisor: Options.Env[%d]: %q is not KEY=value", i, e)
		}
	}
	return nil
}

// ExitStatus says how a process ended.
type ExitStatus struct {
	// Code is the exit status, or -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, or 0.
	Signal syscall.Signal
}

// String describes the status for people: "exited with status 2" or
// "killed by signal SIGSEGV".
func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return "killed by signal " + signalName(s.Signal)
	}
	return fmt.Sprintf("exited with status %d", s.Code)
}
