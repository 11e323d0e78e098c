package daemon

import (
	"fmt"
	"net"
	"os"
)

// sdNotify sends state (such as "READY=1") to the service manager, over
// the datagram socket named by $NOTIFY_SOCKET (systemd's sd_notify
// protocol). It does nothing when the variable is not set, as when the
// daemon runs in the foreground by hand.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // an abstract socket
		path = "\x00" + path[1:]
	} else if path[0] != '/' {
		return fmt.Errorf("NOTIFY_SOCKET %q: not a socket path", path)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notifying the service manager: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notifying the service manager: %w", err)
	}
	return nil
}
