package testproc

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// StopWait is how long the cleanup of [Start] waits for a process to exit
// after SIGTERM before it kills it.
const StopWait = 20 * time.Second

// A Proc is a child process started by [Start].
type Proc struct {
	// Cmd is the started command.
	Cmd *exec.Cmd

	// Out collects what the process writes to the standard output and
	// error that Start directed to it.
	Out *Buffer

	name     string
	done     chan struct{} // closed once the process has been reaped
	err      error         // the exit, once done is closed
	reported atomic.Bool   // the exit went to a caller of Wait or Stop
}

// Start starts cmd, whose standard output and error go to Out where cmd
// does not direct them elsewhere already, and returns without waiting.
// name names the process in messages.
//
// When t ends, a process still running is stopped with Stop(StopWait); an
// exit other than status 0 that no call of Wait or Stop returned is
// reported as an error, and Out is logged when t has failed.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Out: &Buffer{}, name: name, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.Out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Out
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.reported.Load() {
			<-p.done // reaped by Wait or Stop, or killed
		} else if err := p.Stop(StopWait); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Out.String())
		}
	})
	return p
}

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns how the process exited, nil for status 0. It is valid once
// Done is closed.
func (p *Proc) Err() error { return p.err }

// Wait waits up to wait for the process to exit and returns how it
// exited, nil for status 0. A process still running after wait is killed,
// and Wait returns an error saying so.
func (p *Proc) Wait(wait time.Duration) error {
	return p.wait(wait, fmt.Sprintf("still running after %v; killed", wait))
}

// Stop sends SIGTERM to the process, unless it has exited already, and
// waits for it as Wait does.
func (p *Proc) Stop(wait time.Duration) error {
	select {
	case <-p.done:
	default:
		p.Cmd.Process.Signal(syscall.SIGTERM)
	}
	return p.wait(wait, fmt.Sprintf("still running %v after SIGTERM; killed", wait))
}

// wait waits for the exit as Wait does; killed is its error after a kill.
func (p *Proc) wait(wait time.Duration, killed string) error {
	p.reported.Store(true)
	select {
	case <-p.done:
		return p.err
	case <-time.After(wait):
		p.Cmd.Process.Kill()
		<-p.done
		return errors.New(killed)
	}
}

// WaitOutput waits up to wait until Out contains s, and returns the line
// that holds it. It fails t when the process exits first or the wait
// ends.
func (p *Proc) WaitOutput(t testing.TB, s string, wait time.Duration) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		exited := false
		select {
		case <-p.done: // the output is complete
			exited = true
		default:
		}
		if line, ok := lineWith(p.Out.String(), s); ok {
			return line
		}
		if exited {
			p.reported.Store(true)
			t.Fatalf("%s exited (%v) before writing %q:\n%s", p.name, p.err, s, p.Out.String())
		}
		select {
		case <-p.done:
		case <-deadline:
			t.Fatalf("%s did not write %q within %v:\n%s", p.name, s, wait, p.Out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// lineWith returns the first line of out that contains s.
func lineWith(out, s string) (string, bool) {
	i := strings.Index(out, s)
	if i < 0 {
		return "", false
	}
	line := out[strings.LastIndexByte(out[:i], '\n')+1:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return line, true
}
