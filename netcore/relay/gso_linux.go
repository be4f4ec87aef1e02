package relay

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoSegment returns the segment size (UDP_SEGMENT) in control data from
// quic-go, or 0.
func gsoSegment(oob []byte) int {
	if len(oob) == 0 {
		return 0
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_UDP && m.Header.Type == unix.UDP_SEGMENT && len(m.Data) >= 2 {
			return int(binary.NativeEndian.Uint16(m.Data))
		}
	}
	return 0
}

// gsoControl returns control data asking the kernel to cut a send into
// datagrams of size bytes (UDP_SEGMENT).
func gsoControl(size int) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgSpace(0):], uint16(size))
	return b
}
