//go:build !unix

package pipe

import (
	"errors"
	"syscall"
)

// ReuseControl would share a local port between sockets; this system does
// not offer SO_REUSEPORT.
func ReuseControl(_, _ string, _ syscall.RawConn) error {
	return errors.New("sharing a local port between sockets is not supported on this system")
}
