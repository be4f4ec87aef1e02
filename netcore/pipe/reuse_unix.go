//go:build unix

package pipe

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// ReuseControl sets SO_REUSEADDR and SO_REUSEPORT on a socket before it is
// bound, so several sockets can share one local port: a listener and the
// connections dialled from its port (TCP hole punching), or connections to
// several servers from one port (NAT mapping discovery over TCP). Use it as
// net.Dialer.Control or net.ListenConfig.Control.
func ReuseControl(_, _ string, c syscall.RawConn) error {
	var opErr error
	err := c.Control(func(fd uintptr) {
		if opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); opErr != nil {
			return
		}
		opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return opErr
}
