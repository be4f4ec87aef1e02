// Package chat is the chat protocol ("chat/1"): text messages between
// two nodes over a stream of their secure session, with ids, timestamps
// and delivery receipts, a history per peer kept on disk, and an outbox:
// a message written while the peer is away waits in the history until the
// next session delivers it.
//
// On the stream, the side that has messages to deliver writes them, one
// frame each; the other side stores each message it has not seen (by id)
// and answers every one, seen or not, with a receipt. A message is
// delivered once its receipt arrives; until then it is sent again on
// every new session, and the id keeps the peer from showing it twice.
package chat

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"p2pd/netcore/identity"
	"p2pd/netcore/session"
)

// Proto is the stream protocol name.
const Proto = "chat/1"

const (
	// MaxText bounds a message's text.
	MaxText = 16 << 10
	// maxFrame bounds a frame: a message with its JSON envelope.
	maxFrame = MaxText*6 + 1024
	// receiptTimeout bounds waiting for a receipt once a message is sent.
	receiptTimeout = 10 * time.Second
)

// Message is one chat message.
type Message struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"` // when it was written, on the writer's clock
	Text string    `json:"text"`
}

// frame is what the stream carries: a message, or a receipt for one.
type frame struct {
	Msg     *Message `json:"msg,omitempty"`
	Receipt string   `json:"receipt,omitempty"`
}

// ErrTooLong and ErrNotText refuse a message before it is stored.
var (
	ErrTooLong = fmt.Errorf("a message is at most %d bytes", MaxText)
	ErrNotText = errors.New("a message must be UTF-8 text")
)

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Printable returns text fit for a terminal: control characters other
// than tab and newline (escape sequences a peer could use to redraw the
// screen or set the clipboard) become U+FFFD.
func Printable(text string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\t' && r != '\n' {
			return '\uFFFD'
		}
		return r
	}, text)
}

func check(text string) error {
	switch {
	case len(text) > MaxText:
		return ErrTooLong
	case !utf8.ValidString(text):
		return ErrNotText
	}
	return nil
}

// Chat sends and receives messages for a node, keeping them in a Store.
type Chat struct {
	// OnDelivered, if set (before Deliver runs), hears of each receipt
	// once it is stored: the message id reached peer.
	OnDelivered func(peer identity.ID, id string)

	store *Store
	// onMessage, if set, hears each new incoming message once.
	onMessage func(peer identity.ID, m Message)
}

// New returns a chat keeping its history in store; onMessage (may be
// nil) hears each new incoming message once.
func New(store *Store, onMessage func(peer identity.ID, m Message)) *Chat {
	return &Chat{store: store, onMessage: onMessage}
}

// Write stores a message to peer in its outbox and returns it; Deliver
// sends it.
func (c *Chat) Write(peer identity.ID, text string) (Message, error) {
	if err := check(text); err != nil {
		return Message{}, err
	}
	m := Message{ID: newID(), Time: time.Now().UTC(), Text: text}
	if err := c.store.append(peer, Entry{Message: m, Out: true}); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Waiting returns how many messages to peer wait in the outbox.
func (c *Chat) Waiting(peer identity.ID) (int, error) { return c.store.Waiting(peer) }

// Deliver sends every undelivered message to the peer of sess, oldest
// first, and records each receipt. It returns how many were delivered.
func (c *Chat) Deliver(ctx context.Context, sess *session.Session) (int, error) {
	peer := sess.PeerID()
	pending, err := c.store.Pending(peer)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	st, err := sess.Open(ctx, Proto)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	for i := range pending {
		if err := writeFrame(st, frame{Msg: &pending[i]}); err != nil {
			return 0, fmt.Errorf("sending to %s: %w", peer, err)
		}
	}
	waiting := map[string]bool{}
	for _, m := range pending {
		waiting[m.ID] = true
	}
	delivered := 0
	st.SetReadDeadline(time.Now().Add(receiptTimeout))
	for len(waiting) > 0 {
		var f frame
		if err := readFrame(st, &f); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return delivered, fmt.Errorf("waiting for receipts from %s: %w", peer, err)
		}
		if !waiting[f.Receipt] {
			continue // not for a message of this round, or a repeat
		}
		delete(waiting, f.Receipt)
		if err := c.store.append(peer, Entry{Receipt: f.Receipt}); err != nil {
			return delivered, err
		}
		delivered++
		if c.OnDelivered != nil {
			c.OnDelivered(peer, f.Receipt)
		}
	}
	return delivered, nil
}

// Handle serves a chat/1 stream from the peer of sess: it stores each
// message not seen before and answers every one with a receipt. Register
// it on the node for Proto.
func (c *Chat) Handle(ctx context.Context, sess *session.Session, st net.Conn) {
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	c.serve(sess.PeerID(), st)
}

// serve stores the messages peer sends on st and answers each with its
// receipt, until the stream ends or carries something that is not a
// message.
func (c *Chat) serve(peer identity.ID, st io.ReadWriter) {
	for {
		var f frame
		if err := readFrame(st, &f); err != nil {
			return
		}
		m := f.Msg
		if m == nil || m.ID == "" || len(m.ID) > 64 || check(m.Text) != nil {
			return // a peer that sends garbage loses the stream
		}
		fresh, err := c.store.receive(peer, *m)
		if err != nil {
			return // not stored: no receipt, so it is sent again
		}
		if fresh && c.onMessage != nil {
			c.onMessage(peer, *m)
		}
		if err := writeFrame(st, frame{Receipt: m.ID}); err != nil {
			return
		}
	}
}

func writeFrame(w io.Writer, f frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

func readFrame(r io.Reader, f *frame) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return fmt.Errorf("a frame of %d bytes (at most %d)", size, maxFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, f)
}
