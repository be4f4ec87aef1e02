package engine

import (
	"fmt"

	"p2pd/chat"
	"p2pd/netcore/identity"
)

// Peer names the other side of a message or transfer.
type Peer struct {
	ID   identity.ID
	Name string // the friend's name, or the short id of a stranger
}

// peer names id: its friend's name if it is one.
func (e *Engine) peer(id identity.ID) Peer {
	for _, f := range e.friends.All() {
		if f.ID() == id {
			return Peer{ID: id, Name: f.Name}
		}
	}
	return Peer{ID: id, Name: id.String()}
}

// friendID returns the id of the friend called name.
func (e *Engine) friendID(name string) (identity.ID, error) {
	if err := e.friends.Reload(); err != nil {
		return identity.ID{}, err
	}
	f, err := e.friends.Get(name)
	if err != nil {
		return identity.ID{}, err
	}
	return f.ID(), nil
}

func (e *Engine) onMessage(from identity.ID, m chat.Message) {
	if h := e.hook().Message; h != nil {
		h(e.peer(from), m)
	}
}

func (e *Engine) onDelivered(to identity.ID, id string) {
	if h := e.hook().Delivered; h != nil {
		h(e.peer(to), id)
	}
}

// History returns the conversation with the friend called name, oldest
// first.
func (e *Engine) History(name string) ([]chat.Line, error) {
	id, err := e.friendID(name)
	if err != nil {
		return nil, err
	}
	return e.store.History(id)
}

// SendMessage writes text to the friend called name and returns the
// message: it is kept in the chat outbox (and survives a restart) and the
// Keeper delivers it now if the friend can be reached, else as soon as
// they can. A Presence event says when it was delivered.
func (e *Engine) SendMessage(name, text string) (chat.Message, error) {
	id, err := e.friendID(name)
	if err != nil {
		return chat.Message{}, err
	}
	m, err := e.chat.Write(id, text)
	if err != nil {
		return chat.Message{}, fmt.Errorf("not sent: %w", err)
	}
	if k := e.keeper(); k != nil {
		k.Nudge()
	}
	return m, nil
}

// Online says which friends are online now, by name (as the Keeper last
// saw them: a live session, or an answer to its poll).
func (e *Engine) Online() map[string]bool {
	out := map[string]bool{}
	if k := e.keeper(); k != nil {
		for _, s := range k.States() {
			out[s.Name] = s.Online
		}
	}
	return out
}
