package session

import (
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-yamux/v5"
	"github.com/quic-go/quic-go"
)

// Why a stream stopped, in words for the person who reads the error; the
// transport's own error stays wrapped for errors.Is and errors.As.
var (
	errEnded      = errors.New("the session ended")
	errPeerEnded  = errors.New("the peer ended the session")
	errConnClosed = errors.New("the connection to the peer closed")
	errSilent     = errors.New("the peer stopped answering")
	errDropped    = errors.New("the peer dropped the stream")
)

// plain words a stream's Read or Write error from either transport;
// io.EOF and deadline errors pass as they are (callers test for them).
func plain(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var (
		timeout interface{ Timeout() bool }
		idle    *quic.IdleTimeoutError
		app     *quic.ApplicationError
		qreset  *quic.StreamError
		goAway  *yamux.GoAwayError
		yreset  *yamux.StreamError
	)
	why := error(nil)
	switch {
	case errors.As(err, &idle):
		why = errSilent
	case errors.As(err, &timeout) && timeout.Timeout():
		return err
	case errors.As(err, &goAway) && goAway.Remote, errors.As(err, &app) && app.Remote:
		why = errPeerEnded
	case errors.As(err, &goAway), errors.As(err, &app):
		why = errEnded
	case errors.As(err, &yreset) && yreset.Remote, errors.As(err, &qreset) && qreset.Remote:
		why = errDropped
	case errors.Is(err, yamux.ErrStreamReset):
		// yamux resets every stream so when its connection ends.
		why = errConnClosed
	default:
		return err
	}
	return fmt.Errorf("%w (%w)", why, err)
}
