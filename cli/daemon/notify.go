package daemon

import (
	"fmt"
	"net"
)

// notifier speaks systemd's sd_notify protocol: one datagram per state
// change to the unix socket named by $NOTIFY_SOCKET (a leading '@' is the
// abstract namespace, which the net package maps). Without a socket it
// does nothing.
type notifier struct{ socket string }

func (n notifier) send(state string) error {
	if n.socket == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.socket, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.socket, err)
	}
	return nil
}
