//go:build !linux

package udpbatch

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// sysConn moves one datagram per system call through the net package.
type sysConn struct {
	rmu sync.Mutex // serializes reads; guards buf
	buf []byte
	wmu sync.Mutex // serializes writes, so that batches do not interleave
}

func (c *Conn) init() error {
	if n := c.opts.SocketBufferSize; n > 0 {
		_ = c.uc.SetReadBuffer(n)
		_ = c.uc.SetWriteBuffer(n)
	}
	// One spare byte tells a datagram that was cut short.
	c.sys.buf = make([]byte, c.opts.MaxDatagramSize+1)
	return nil
}

func (c *Conn) offloads() (gso, gro bool) { return false, false }

func (c *Conn) readBatch(msgs []Message) (int, error) {
	s := &c.sys
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for {
		n, addr, err := c.uc.ReadFromUDPAddrPort(s.buf)
		c.stats.syscalls.Add(1)
		if err != nil {
			return 0, err
		}
		if n > c.opts.MaxDatagramSize {
			c.stats.truncated.Add(1)
			continue
		}
		msgs[0] = Message{Buf: s.buf[:n], Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())}
		c.stats.received.Add(1)
		return 1, nil
	}
}

func (c *Conn) writeBatch(msgs []Message) (int, error) {
	c.sys.wmu.Lock()
	defer c.sys.wmu.Unlock()
	sent := 0
	var firstErr error
	for _, m := range msgs {
		var err error
		if m.Addr.IsValid() {
			_, err = c.uc.WriteToUDPAddrPort(m.Buf, m.Addr)
		} else {
			_, err = c.uc.Write(m.Buf)
		}
		c.stats.syscalls.Add(1)
		if errors.Is(err, net.ErrClosed) {
			return sent, err
		}
		if err != nil {
			c.stats.sendErrors.Add(1)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sent++
		c.stats.sent.Add(1)
	}
	return sent, firstErr
}
