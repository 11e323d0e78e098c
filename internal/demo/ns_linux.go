package demo

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// newNS creates an unnamed network namespace with its loopback up. It
// lives as long as the handle or a process inside it.
func newNS() (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		// A thread that cannot switch back is never unlocked, so it ends
		// with this goroutine.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		h, err := netns.New() // switches this thread
		if rerr := netns.Set(orig); rerr == nil {
			runtime.UnlockOSThread()
		} else if err == nil {
			h.Close()
			err = rerr
		}
		done <- result{h, err}
	}()
	r := <-done
	if r.err != nil {
		return netns.None(), fmt.Errorf("creating a network namespace: %w", r.err)
	}
	nl, err := netlink.NewHandleAt(r.h)
	if err != nil {
		r.h.Close()
		return netns.None(), err
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		r.h.Close()
		return netns.None(), fmt.Errorf("bringing lo up: %w", err)
	}
	return r.h, nil
}

// inNS runs fn on a locked OS thread switched into ns. Sockets that fn
// opens stay in ns; goroutines that fn starts do not run there.
func inNS(ns netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		err = fn()
		if rerr := netns.Set(orig); rerr == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// veth joins two namespaces with a veth pair, both ends named eth0,
// addressed and up.
func veth(a, b netns.NsHandle, addrA, addrB string) error {
	ha, err := netlink.NewHandleAt(a)
	if err != nil {
		return err
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b)
	if err != nil {
		return err
	}
	defer hb.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(b))}
	if err := ha.LinkAdd(v); err != nil {
		return fmt.Errorf("creating the veth pair: %w", err)
	}
	for _, side := range []struct {
		h    *netlink.Handle
		addr string
	}{{ha, addrA}, {hb, addrB}} {
		link, err := side.h.LinkByName("eth0")
		if err != nil {
			return err
		}
		addr, err := netlink.ParseAddr(side.addr)
		if err != nil {
			return err
		}
		if err := side.h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("adding %s: %w", side.addr, err)
		}
		if err := side.h.LinkSetUp(link); err != nil {
			return err
		}
	}
	return nil
}

// process is a child started in a namespace by startIn.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped
	err  error         // the exit, once done is closed
}

// startIn starts cmd inside ns: from a locked OS thread switched into ns,
// which the child inherits. The thread stays locked until the child has
// been reaped and then ends, which is what cmd's parent-death signal
// (SysProcAttr.Pdeathsig) follows: the child gets it when this process
// ends first.
//
// With resolvConf, the thread first moves to a mount namespace of its own
// in which that file is mounted over /etc/resolv.conf, so that the child
// sees and changes it instead of the host's.
func startIn(ns netns.NsHandle, cmd *exec.Cmd, resolvConf string) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		defer close(p.done)
		if resolvConf != "" {
			if err := privateResolvConf(resolvConf); err != nil {
				started <- err
				return
			}
		}
		if err := netns.Set(ns); err != nil {
			started <- err
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// errStillRunning is stop's error for a process that had to be killed.
var errStillRunning = errors.New("still running; killed")

// privateResolvConf moves the calling thread, which must be locked and
// never return to the runtime, to a new mount namespace whose mounts do
// not propagate to the host's, and mounts file over /etc/resolv.conf
// there. Without an /etc/resolv.conf there is nothing to hide.
func privateResolvConf(file string) error {
	if _, err := os.Stat("/etc/resolv.conf"); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("creating a mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mounts private: %w", err)
	}
	if err := unix.Mount(file, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mounting %s over /etc/resolv.conf: %w", file, err)
	}
	return nil
}
