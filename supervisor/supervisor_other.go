//go:build !linux

package supervisor

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"time"

	"github.com/netext/netext/internal/providerproto"
)

// Process is a running provider process.
type Process struct{}

// Launch returns errors.ErrUnsupported: provider processes need Linux.
func Launch(ctx context.Context, opts Options) (*Process, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	return nil, errors.ErrUnsupported
}

// Conn returns nil.
func (p *Process) Conn() *providerproto.Conn { return nil }

// PID returns 0.
func (p *Process) PID() int { return 0 }

// Done returns a closed channel.
func (p *Process) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// ExitStatus returns false.
func (p *Process) ExitStatus() (ExitStatus, bool) { return ExitStatus{}, false }

// WaitHello returns errors.ErrUnsupported.
func (p *Process) WaitHello(ctx context.Context, timeout time.Duration) (*providerproto.Hello, error) {
	return nil, errors.ErrUnsupported
}

// Kill returns errors.ErrUnsupported.
func (p *Process) Kill() error { return errors.ErrUnsupported }

// Stop returns errors.ErrUnsupported.
func (p *Process) Stop(grace time.Duration) error { return errors.ErrUnsupported }

func signalName(s syscall.Signal) string { return "signal " + strconv.Itoa(int(s)) }
