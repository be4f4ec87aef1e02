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

// answerPiece is the most of one write that answerPatience covers: a
// big answer (the result of a transfer of many files) on a slow link
// takes long in all, but each piece of it moves (64 KiB in 7 s at the
// 9 KB/s a session outlives).
const answerPiece = 64 << 10

// patient is a stream the peer opened, as its handler sees it.
type patient struct{ net.Conn }

func (p patient) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		piece := b[:min(len(b), answerPiece)]
		t := time.AfterFunc(answerPatience, func() { session.Reset(p.Conn) })
		n, err := p.Conn.Write(piece)
		t.Stop()
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}
