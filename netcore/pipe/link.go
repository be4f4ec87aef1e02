package pipe

import (
	"log/slog"
	"net/netip"
	"sync"
)

// Link relays messages between a and b: what a receives is sent on b to b's
// destination, and the reverse. Relaying runs on the receiving pipe's reader,
// so a slow side slows the other (TCP flow control carries through). The link
// ends when either pipe ends or unlink is called; it closes neither pipe.
func Link(a, b *Pipe) (unlink func()) {
	forward := func(to *Pipe) MsgHandler {
		return func(msg []byte, _ netip.AddrPort, _ *Pipe) {
			if err := to.Send(to.ctx, msg, netip.AddrPort{}); err != nil {
				slog.Debug("pipe: relaying a message failed", "to", to.remote, "err", err)
			}
		}
	}
	ha, hb := a.AddMsgHandler(forward(b)), b.AddMsgHandler(forward(a))

	var (
		mu       sync.Mutex
		unlinked bool
		ends     []func()
	)
	unlink = func() {
		mu.Lock()
		defer mu.Unlock()
		if unlinked {
			return
		}
		unlinked = true
		a.RemoveMsgHandler(ha)
		b.RemoveMsgHandler(hb)
		for _, remove := range ends {
			remove()
		}
	}
	// An end handler runs at once if its pipe already ended, so it is
	// registered outside mu and its removal recorded afterwards.
	for _, p := range []*Pipe{a, b} {
		id := p.AddEndHandler(func(*Pipe, error) { unlink() })
		remove := func() { p.RemoveEndHandler(id) }
		mu.Lock()
		if unlinked {
			remove()
		} else {
			ends = append(ends, remove)
		}
		mu.Unlock()
	}
	return unlink
}
