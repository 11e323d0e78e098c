package provider

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// dupSocket returns a close-on-exec duplicate of the socket behind c. The
// caller closes it.
func dupSocket(c syscall.RawConn) (*os.File, error) {
	fd := -1
	var derr error
	if err := c.Control(func(raw uintptr) {
		fd, derr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("duplicating the descriptor: %w", derr)
	}
	return os.NewFile(uintptr(fd), "protected-socket"), nil
}

// bindToDevice is unix.BindToDevice; tests replace it to exercise the
// fallback of bindToTunnel.
var bindToDevice = unix.BindToDevice

// bindToTunnel binds the socket c of the given network ("tcp4", "udp6",
// ...) to the tunnel interface; see Tunnel.DialTunnel.
func bindToTunnel(c syscall.RawConn, network string, bt bindTarget) error {
	var serr error
	err := c.Control(func(raw uintptr) {
		fd := int(raw)
		serr = bindToDevice(fd, bt.name)
		if !errors.Is(serr, unix.EPERM) {
			if serr != nil {
				serr = fmt.Errorf("binding to %s: %w", bt.name, serr)
			}
			return
		}
		serr = bindToTunnelAddr(fd, network, bt)
	})
	if err != nil {
		return err
	}
	return serr
}

// bindToTunnelAddr is the unprivileged fallback where SO_BINDTODEVICE is
// refused: bind to the tunnel's own address, and for UDP name the
// interface with IP_UNICAST_IF or IPV6_UNICAST_IF.
func bindToTunnelAddr(fd int, network string, bt bindTarget) error {
	index := bt.index
	if index == 0 {
		ifi, err := net.InterfaceByName(bt.name)
		if err != nil {
			return fmt.Errorf("binding to %s: %w", bt.name, err)
		}
		index = ifi.Index
	}
	udp := strings.HasPrefix(network, "udp")
	if strings.HasSuffix(network, "6") {
		if udp {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_IF, index); err != nil {
				return fmt.Errorf("binding to %s with IPV6_UNICAST_IF: %w", bt.name, err)
			}
		}
		if !bt.addr6.IsValid() {
			return fmt.Errorf("binding to %s: SO_BINDTODEVICE not permitted, and the tunnel has no IPv6 address", bt.name)
		}
		sa := &unix.SockaddrInet6{Addr: bt.addr6.As16()}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("binding to %s's address %v: %w", bt.name, bt.addr6, err)
		}
		return nil
	}
	if udp {
		// IP_UNICAST_IF takes the index in network byte order.
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(index))
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_UNICAST_IF, int(binary.NativeEndian.Uint32(b[:]))); err != nil {
			return fmt.Errorf("binding to %s with IP_UNICAST_IF: %w", bt.name, err)
		}
	}
	if !bt.addr4.IsValid() {
		return fmt.Errorf("binding to %s: SO_BINDTODEVICE not permitted, and the tunnel has no IPv4 address", bt.name)
	}
	sa := &unix.SockaddrInet4{Addr: bt.addr4.As4()}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("binding to %s's address %v: %w", bt.name, bt.addr4, err)
	}
	return nil
}
