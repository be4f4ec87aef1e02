package node

import (
	"net"
	"time"

	"p2pd/netcore/session"
)

// answerPatience bounds one write of a handler to a stream the peer
// opened. A peer that sends and never reads the answers (echo/1 replies,
// chat receipts) would block the handler's write, and with it the
// handler's reads: what the peer sent meanwhile (up to a stream's window,
// megabytes) would sit unread for good. The stream is dropped instead,
// which frees it. A peer that reads at all, however slowly a link
// carries the answer, takes far less.
var answerPatience = 30 * time.Second

// patient is a stream the peer opened, as its handler sees it.
type patient struct{ net.Conn }

func (p patient) Write(b []byte) (int, error) {
	t := time.AfterFunc(answerPatience, func() { session.Reset(p.Conn) })
	defer t.Stop()
	return p.Conn.Write(b)
}
