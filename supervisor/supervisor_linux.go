package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/providerproto"
)

const (
	// defaultPath is the provider's PATH.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// outputQueue is the number of output lines waiting for the logger
	// before more are dropped.
	outputQueue = 256
	// outputDrain is how long the output of an exited process is read
	// before its pipes are closed (a process that escaped the group may
	// hold them open).
	outputDrain = 2 * time.Second
	// exitSettle is how long WaitHello waits for the process to exit after
	// its connection closed, to report the exit status.
	exitSettle = time.Second
	// killWait bounds the wait for a process killed with SIGKILL.
	killWait = 10 * time.Second
)

// Process is a running (or ended) provider process. Its methods are safe
// for concurrent use.
type Process struct {
	pid  int
	conn *providerproto.Conn
	log  *slog.Logger

	exited chan struct{} // closed when the process has exited (not yet reaped)
	done   chan struct{} // closed when it has been reaped and its output read

	mu     sync.Mutex // guards the fields below
	reaped bool       // its pid may belong to someone else now
	status ExitStatus
}

// Launch starts a provider process as described in the package
// documentation and returns once it runs. The protocol connection is open
// at once; call [Process.WaitHello] next. ctx only bounds the launch
// itself.
func Launch(ctx context.Context, opts Options) (*Process, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("supervisor: launching %s: %w", opts.Path, err)
	}
	cred, err := credential(&opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxLine := opts.MaxLineBytes
	if maxLine == 0 {
		maxLine = DefaultMaxLineBytes
	}

	var toClose []*os.File
	defer func() {
		for _, f := range toClose {
			_ = f.Close()
		}
	}()
	daemonEnd, providerEnd, err := providerproto.Socketpair()
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	toClose = append(toClose, providerEnd)
	outR, outW, err := os.Pipe()
	if err != nil {
		_ = daemonEnd.Close()
		return nil, fmt.Errorf("supervisor: creating the stdout pipe: %w", err)
	}
	toClose = append(toClose, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = daemonEnd.Close()
		_ = outR.Close()
		return nil, fmt.Errorf("supervisor: creating the stderr pipe: %w", err)
	}
	toClose = append(toClose, errW)

	connCfg := opts.Conn
	connCfg.Role = providerproto.RoleDaemon
	if connCfg.Logger == nil {
		connCfg.Logger = log
	}
	conn, err := providerproto.New(daemonEnd, connCfg)
	if err != nil {
		_ = outR.Close()
		_ = errR.Close()
		return nil, fmt.Errorf("supervisor: %w", err)
	}

	cmd := &exec.Cmd{
		Path:       opts.Path,
		Args:       append([]string{opts.Path}, opts.Args...),
		Env:        append([]string{defaultPath, providerproto.EnvFD + "=" + strconv.Itoa(providerproto.DefaultFD)}, opts.Env...),
		Dir:        "/",
		Stdout:     outW,
		Stderr:     errW,
		ExtraFiles: []*os.File{providerEnd}, // becomes descriptor 3
		SysProcAttr: &syscall.SysProcAttr{
			Credential: cred,
			Setpgid:    true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	p := &Process{
		conn:   conn,
		log:    log,
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}
	// Only the descriptors in cmd may reach the provider: Go marks its own
	// close-on-exec, but not those the daemon inherited.
	markCloseOnExec()
	started := make(chan error, 1)
	out := p.startOutput(outR, errR, maxLine)
	go p.supervise(cmd, started, out)
	if err := <-started; err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("supervisor: starting %s: %w", opts.Path, err)
	}
	uid := os.Geteuid()
	if cred != nil {
		uid = int(cred.Uid)
	}
	log.Info("provider started", "path", opts.Path, "pid", p.pid, "uid", uid)
	return p, nil
}

// markCloseOnExec marks every descriptor from 3 up close-on-exec (exec.Cmd
// moves ExtraFiles into place in the child, clearing the flag there).
func markCloseOnExec() {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Kernels before 5.11.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= 3 {
			unix.CloseOnExec(fd)
		}
	}
}

// credential returns the credential the child switches to, or nil to run
// it as the daemon's own user.
func credential(opts *Options) (*syscall.Credential, error) {
	euid, egid := os.Geteuid(), os.Getegid()
	switch {
	case euid == 0:
		// Groups is empty and NoSetGroups false: the supplementary
		// groups are cleared.
		return &syscall.Credential{Uid: opts.UID, Gid: opts.GID}, nil
	case opts.UID == uint32(euid) && opts.GID == uint32(egid):
		return nil, nil
	}
	return nil, fmt.Errorf("supervisor: running a provider as uid %d gid %d needs root; the daemon runs as uid %d gid %d", opts.UID, opts.GID, euid, egid)
}

// supervise starts the process from a locked thread of its own and stays
// on that thread until the process has been reaped; see "Threads" in the
// package documentation. The thread is never unlocked, so it ends with this
// goroutine.
func (p *Process) supervise(cmd *exec.Cmd, started chan<- error, out *output) {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		out.close()
		started <- fmt.Errorf("setting no_new_privs: %w", err)
		return
	}
	if err := cmd.Start(); err != nil {
		out.close()
		started <- err
		return
	}
	p.pid = cmd.Process.Pid
	started <- nil

	// Wait for the exit without reaping, so that the pid (which is also
	// the process group's id) cannot be reused while the rest of the group
	// is killed.
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	close(p.exited)
	p.mu.Lock()
	_ = unix.Kill(-p.pid, unix.SIGKILL)
	p.mu.Unlock()
	_ = cmd.Wait()
	var status ExitStatus
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		status = ExitStatus{Code: -1, Signal: ws.Signal()}
	} else {
		status = ExitStatus{Code: cmd.ProcessState.ExitCode()}
	}
	p.mu.Lock()
	p.reaped = true
	p.status = status
	p.mu.Unlock()
	_ = p.conn.Close()
	p.log.Info("provider ended", "pid", p.pid, "status", status.String())

	select {
	case <-out.done:
	case <-time.After(outputDrain):
		out.close()
		<-out.done
	}
	close(p.done)
}

// Conn returns the daemon's end of the protocol connection. It is closed
// once the process has exited.
func (p *Process) Conn() *providerproto.Conn { return p.conn }

// PID returns the process id.
func (p *Process) PID() int { return p.pid }

// Done returns a channel that is closed once the process has exited, its
// process group has been killed, it has been reaped and its output has
// been read.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitStatus returns how the process ended, and false while it has not
// been reaped.
func (p *Process) ExitStatus() (ExitStatus, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.reaped
}

// exitText describes the ended process for errors.
func (p *Process) exitText() string {
	if s, ok := p.ExitStatus(); ok {
		return s.String()
	}
	return "exited"
}

// WaitHello waits up to timeout (and at most until ctx ends) for the
// provider's hello and returns it once the daemon's end has answered with
// its welcome. It fails when the handshake fails (the error wraps the
// providerproto *Error sent to the provider, which names both version
// ranges on a version mismatch), when the process exits first, or when the
// time runs out (the error then matches context.DeadlineExceeded).
func (p *Process) WaitHello(ctx context.Context, timeout time.Duration) (*providerproto.Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	h, err := p.conn.WaitHello(ctx)
	if err == nil {
		return h, nil
	}
	var perr *providerproto.Error
	if errors.As(err, &perr) {
		return nil, fmt.Errorf("provider handshake failed: %w", perr)
	}
	select {
	case <-p.exited:
	default:
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, helloTimeout(timeout)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for the provider's hello: %w", err)
		}
	}
	if p.waitExited(exitSettle) {
		// The handshake may have failed just before the process ended
		// (the provider exits when it is refused). The connection is
		// closed by now, so this returns at once.
		cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer ccancel()
		if _, herr := p.conn.WaitHello(cctx); errors.As(herr, &perr) {
			return nil, fmt.Errorf("provider handshake failed: %w", perr)
		}
		return nil, fmt.Errorf("provider %s before saying hello", p.exitText())
	}
	return nil, fmt.Errorf("waiting for the provider's hello: %w", err)
}

// helloTimeout reports a provider that did not say hello in time. It
// matches context.DeadlineExceeded.
type helloTimeout time.Duration

func (e helloTimeout) Error() string {
	return fmt.Sprintf("provider did not say hello within %v", time.Duration(e))
}

func (e helloTimeout) Is(target error) bool { return target == context.DeadlineExceeded }

// waitExited waits up to d for the process to end and be reaped.
func (p *Process) waitExited(d time.Duration) bool {
	select {
	case <-p.exited:
	case <-time.After(d):
		return false
	}
	select {
	case <-p.done:
	case <-time.After(outputDrain + time.Second):
	}
	return true
}

// Kill sends SIGKILL to the process's whole process group. It does nothing
// once the process has been reaped.
func (p *Process) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return nil
	}
	if err := unix.Kill(-p.pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
		return fmt.Errorf("supervisor: killing process group %d: %w", p.pid, err)
	}
	return nil
}

// Stop ends the process: it closes the daemon's end of the connection (a
// provider exits when it reads end of file), waits up to grace for the
// process to exit, and then kills its process group. It returns once the
// process is done (see Done), with an error if it had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	_ = p.conn.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	if err := p.Kill(); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(killWait):
		return fmt.Errorf("supervisor: provider %d did not end within %v of SIGKILL", p.pid, killWait)
	}
	return fmt.Errorf("provider did not exit within %v of its connection closing; killed", grace)
}

func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(s))
}

// output relays a process's standard output and error to the logger.
type output struct {
	files   []*os.File
	dropped atomic.Int64
	done    chan struct{} // closed when both streams are read and logged
}

type outputLine struct {
	stream, text string
}

// startOutput starts the readers of stdout and stderr (the read ends of
// the pipes, which it owns) and the goroutine that logs their lines.
func (p *Process) startOutput(stdout, stderr *os.File, maxLine int) *output {
	o := &output{files: []*os.File{stdout, stderr}, done: make(chan struct{})}
	lines := make(chan outputLine, outputQueue)
	var readers sync.WaitGroup
	for i, name := range []string{"stdout", "stderr"} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			o.read(name, o.files[i], maxLine, lines)
		}()
	}
	go func() {
		readers.Wait()
		close(lines)
	}()
	go func() {
		defer close(o.done)
		for l := range lines {
			if n := o.dropped.Swap(0); n > 0 {
				p.log.Warn("provider output dropped: the log fell behind", "lines", n)
			}
			p.log.Info("provider output", "stream", l.stream, "line", l.text)
		}
		if n := o.dropped.Swap(0); n > 0 {
			p.log.Warn("provider output dropped: the log fell behind", "lines", n)
		}
	}()
	return o
}

// read reads one stream line by line until end of file or until the file
// is closed. It never waits for the logger.
func (o *output) read(stream string, f *os.File, maxLine int, lines chan<- outputLine) {
	defer f.Close()
	br := bufio.NewReaderSize(f, maxLine)
	emit := func(text string) {
		select {
		case lines <- outputLine{stream, text}:
		default:
			o.dropped.Add(1)
		}
	}
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			emit(string(line) + " [cut]")
			// Skip the rest of the line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return
			}
		case len(line) > 0:
			emit(strings.TrimRight(string(line), "\r\n"))
		}
		if err != nil {
			return
		}
	}
}

// close closes the read ends, which ends the readers.
func (o *output) close() {
	for _, f := range o.files {
		_ = f.Close()
	}
}
