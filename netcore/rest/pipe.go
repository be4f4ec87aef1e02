package rest

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"p2pd/netcore/pipe"
)

// pipe turns the HTTP connection into a two-way relay to the named
// connection: after a "101 Switching Protocols" response, bytes the
// client writes go to the peer as messages, and the peer's messages come
// back as bytes, until either side closes.
func (s *Server) pipe(w http.ResponseWriter, r *http.Request, args []string) error {
	if len(args) != 1 {
		return fail(http.StatusBadRequest, "want /p2p/pipe/<name>")
	}
	c, err := s.con(args)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	conn, buf, err := rc.Hijack()
	if err != nil {
		return fail(http.StatusInternalServerError, "this connection cannot become a pipe: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: p2pd-pipe\r\nConnection: Upgrade\r\n\r\n")); err != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// The peer's messages, out to the client.
		defer cancel()
		for {
			m, err := c.p.Recv(ctx, pipe.SubAll)
			if err != nil {
				return
			}
			_, err = conn.Write(m.Data)
			m.Release()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		<-ctx.Done()
		conn.Close() // ends the read below
	}()
	b := make([]byte, 32<<10)
	for {
		// buf holds what the client sent right after its request.
		n, err := buf.Read(b)
		if n > 0 {
			if serr := c.p.Send(ctx, b[:n], netip.AddrPort{}); serr != nil {
				return nil
			}
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Debug("rest: pipe ended", "name", c.name, "err", err)
			}
			return nil
		}
	}
}
