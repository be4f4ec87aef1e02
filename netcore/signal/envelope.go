package signal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/nacl/box"
)

// Envelopes. Brokers are public and anyone can read any topic, so every
// message is sealed with NaCl box (X25519, XSalsa20-Poly1305) from the
// sender's key to the recipient's: only the recipient can read it, and it
// opens only with the key of the sender it names. The keys are the nodes'
// Ed25519 identity keys, converted to X25519 (as libsodium's
// crypto_sign_ed25519_pk_to_curve25519 does).
//
//	envelope  = magic sender nonce box
//	magic     = "P2S1"
//	sender    = 32 OCTET       Ed25519 public key
//	nonce     = 24 OCTET       random
//	plaintext = sent id kind body
//	sent      = 8 OCTET        Unix nanoseconds, on the sender's corrected clock
//	id        = 16 OCTET       random: replays and duplicates are dropped by it
//	kind      = OCTET

var magic = []byte("P2S1")

const (
	// MaxBody bounds a message's body: signaling carries addresses and
	// punching plans, never data.
	MaxBody = 4096
	// Window is how far a message's time may be from now: long enough for
	// a slow broker and small clock errors, short enough that a replay
	// outside it is refused without remembering ids forever.
	Window = 2 * time.Minute

	headerLen = 4 + 32 + 24
	innerLen  = 8 + 16 + 1
	maxSealed = headerLen + box.Overhead + innerLen + MaxBody
)

// Message is a signaling message, as sent or received.
type Message struct {
	From ed25519.PublicKey // the sender, proven by the seal
	Kind byte              // the node's message type
	Body []byte
	Sent time.Time // on the sender's clock
	ID   [16]byte
}

// Reasons an envelope is dropped.
var (
	ErrMalformed  = errors.New("not a signaling envelope")
	ErrSeal       = errors.New("envelope does not open: tampered with, for another key, or its sender is forged")
	ErrStale      = errors.New("envelope is outside the time window")
	ErrReplay     = errors.New("envelope was already received")
	ErrTooLarge   = errors.New("message body is too large")
	ErrUnknownKey = errors.New("sender is not one this node talks to")
	ErrFlood      = errors.New("too many messages")
)

// maxSeen bounds the ids remembered: anyone with this node's address can
// send it messages, so a flood must not grow memory without end.
const maxSeen = 10000

// x25519Public converts an Ed25519 public key to X25519.
func x25519Public(pub ed25519.PublicKey) (*[32]byte, error) {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("not an Ed25519 public key: %w", err)
	}
	var out [32]byte
	copy(out[:], p.BytesMontgomery())
	return &out, nil
}

// x25519Private converts an Ed25519 private key to X25519 (RFC 8032's
// secret scalar, which X25519 clamps anyway).
func x25519Private(priv ed25519.PrivateKey) *[32]byte {
	h := sha512.Sum512(priv.Seed())
	var out [32]byte
	copy(out[:], h[:32])
	out[0] &= 248
	out[31] &= 127
	out[31] |= 64
	return &out
}

// Sealer seals and opens envelopes for one identity, with a cache of
// shared keys and of recently seen message ids.
type Sealer struct {
	pub  ed25519.PublicKey
	priv *[32]byte
	now  func() time.Time

	mu     sync.Mutex
	shared map[[32]byte]*[32]byte // peer Ed25519 key -> precomputed box key
	seen   map[[16]byte]time.Time // message id -> expiry
}

// NewSealer makes a sealer for the key pair; now is the corrected clock.
func NewSealer(pub ed25519.PublicKey, priv ed25519.PrivateKey, now func() time.Time) *Sealer {
	return &Sealer{pub: pub, priv: x25519Private(priv), now: now,
		shared: map[[32]byte]*[32]byte{}, seen: map[[16]byte]time.Time{}}
}

func (s *Sealer) key(peer ed25519.PublicKey) (*[32]byte, error) {
	var k [32]byte
	copy(k[:], peer)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sk, ok := s.shared[k]; ok {
		return sk, nil
	}
	xp, err := x25519Public(peer)
	if err != nil {
		return nil, err
	}
	sk := new([32]byte)
	box.Precompute(sk, xp, s.priv)
	s.shared[k] = sk
	return sk, nil
}

// Seal makes an envelope carrying kind and body to the peer.
func (s *Sealer) Seal(to ed25519.PublicKey, kind byte, body []byte) ([]byte, Message, error) {
	if len(body) > MaxBody {
		return nil, Message{}, fmt.Errorf("%w (%d bytes, limit %d)", ErrTooLarge, len(body), MaxBody)
	}
	sk, err := s.key(to)
	if err != nil {
		return nil, Message{}, err
	}
	m := Message{From: s.pub, Kind: kind, Body: body, Sent: s.now()}
	rand.Read(m.ID[:])
	var nonce [24]byte
	rand.Read(nonce[:])
	plain := binary.BigEndian.AppendUint64(make([]byte, 0, innerLen+len(body)), uint64(m.Sent.UnixNano()))
	plain = append(plain, m.ID[:]...)
	plain = append(plain, kind)
	plain = append(plain, body...)
	out := append(append(append([]byte{}, magic...), s.pub...), nonce[:]...)
	return box.SealAfterPrecomputation(out, plain, &nonce, sk), m, nil
}

// Open checks an envelope and returns its message. It drops (with the
// reason) anything malformed, not sealed for this key by the sender it
// names, outside the time window, or already received.
func (s *Sealer) Open(env []byte) (Message, error) {
	if len(env) < headerLen+box.Overhead+innerLen || len(env) > maxSealed || !bytes.Equal(env[:4], magic) {
		return Message{}, ErrMalformed
	}
	from := ed25519.PublicKey(bytes.Clone(env[4:36]))
	var nonce [24]byte
	copy(nonce[:], env[36:60])
	sk, err := s.key(from)
	if err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	plain, ok := box.OpenAfterPrecomputation(nil, env[headerLen:], &nonce, sk)
	if !ok {
		return Message{}, ErrSeal
	}
	m := Message{From: from, Sent: time.Unix(0, int64(binary.BigEndian.Uint64(plain))), Kind: plain[24], Body: plain[innerLen:]}
	copy(m.ID[:], plain[8:24])
	now := s.now()
	if d := now.Sub(m.Sent); d > Window || d < -Window {
		return Message{}, fmt.Errorf("%w (sent %v ago)", ErrStale, d.Round(time.Second))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, exp := range s.seen {
		if now.After(exp) {
			delete(s.seen, id)
		}
	}
	if _, dup := s.seen[m.ID]; dup {
		return Message{}, ErrReplay
	}
	if len(s.seen) >= maxSeen {
		return Message{}, fmt.Errorf("%w: more than %d messages in %v", ErrFlood, maxSeen, Window)
	}
	// An id is remembered as long as its message could pass the window.
	s.seen[m.ID] = m.Sent.Add(Window)
	return m, nil
}

// Topic is the MQTT topic a node with key pub listens on: derived from the
// key, so only those who have the node's address can address it, and
// telling nothing about it to a broker.
func Topic(pub ed25519.PublicKey) string {
	h := sha256.Sum256(append([]byte("p2pd signal topic v1\x00"), pub...))
	return "p2pd/v1/" + hex.EncodeToString(h[:16])
}
