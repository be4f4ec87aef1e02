package signal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

type party struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	s    *Sealer
}

func newParty(t *testing.T, now func() time.Time) party {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if now == nil {
		now = time.Now
	}
	return party{pub, priv, NewSealer(pub, priv, now)}
}

func TestSealOpen(t *testing.T) {
	alice, bob, eve := newParty(t, nil), newParty(t, nil), newParty(t, nil)
	env, sent, err := alice.s.Seal(bob.pub, 7, []byte("meet at 12:00:00.250"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bob.s.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	if !m.From.Equal(alice.pub) || m.Kind != 7 || string(m.Body) != "meet at 12:00:00.250" || m.ID != sent.ID {
		t.Errorf("opened %+v", m)
	}
	if bytes.Contains(env, []byte("meet")) {
		t.Error("the body travels in the clear")
	}

	t.Run("replayed", func(t *testing.T) {
		if _, err := bob.s.Open(env); !errors.Is(err, ErrReplay) {
			t.Errorf("err = %v, want ErrReplay", err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		env, _, _ := alice.s.Seal(bob.pub, 7, []byte("x"))
		for _, i := range []int{len(env) - 1, headerLen + 3, 40} { // ciphertext, tag, nonce
			bad := bytes.Clone(env)
			bad[i] ^= 1
			if _, err := bob.s.Open(bad); !errors.Is(err, ErrSeal) {
				t.Errorf("byte %d flipped: err = %v, want ErrSeal", i, err)
			}
		}
	})
	t.Run("for another key", func(t *testing.T) {
		env, _, _ := alice.s.Seal(eve.pub, 7, []byte("x"))
		if _, err := bob.s.Open(env); !errors.Is(err, ErrSeal) {
			t.Errorf("err = %v, want ErrSeal", err)
		}
	})
	t.Run("forged sender", func(t *testing.T) {
		// Eve seals to Bob but writes Alice's key as the sender.
		env, _, _ := eve.s.Seal(bob.pub, 7, []byte("x"))
		copy(env[4:36], alice.pub)
		if _, err := bob.s.Open(env); !errors.Is(err, ErrSeal) {
			t.Errorf("err = %v, want ErrSeal", err)
		}
	})
	t.Run("stale", func(t *testing.T) {
		past := newParty(t, func() time.Time { return time.Now().Add(-3 * time.Minute) })
		future := newParty(t, func() time.Time { return time.Now().Add(3 * time.Minute) })
		for _, p := range []party{past, future} {
			env, _, _ := p.s.Seal(bob.pub, 7, []byte("x"))
			if _, err := bob.s.Open(env); !errors.Is(err, ErrStale) {
				t.Errorf("err = %v, want ErrStale", err)
			}
		}
		// Within the window is fine: clocks differ a little.
		near := newParty(t, func() time.Time { return time.Now().Add(90 * time.Second) })
		env, _, _ := near.s.Seal(bob.pub, 7, []byte("x"))
		if _, err := bob.s.Open(env); err != nil {
			t.Errorf("90 s of skew refused: %v", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		env, _, _ := alice.s.Seal(bob.pub, 7, []byte("x"))
		for _, bad := range [][]byte{nil, env[:50], append([]byte("XXXX"), env[4:]...), make([]byte, maxSealed+1)} {
			if _, err := bob.s.Open(bad); !errors.Is(err, ErrMalformed) {
				t.Errorf("%d bytes: err = %v, want ErrMalformed", len(bad), err)
			}
		}
	})
	t.Run("too large", func(t *testing.T) {
		if _, _, err := alice.s.Seal(bob.pub, 7, make([]byte, MaxBody+1)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v, want ErrTooLarge", err)
		}
	})
}

func TestTopic(t *testing.T) {
	a, b := newParty(t, nil), newParty(t, nil)
	again := ed25519.PublicKey(bytes.Clone(a.pub))
	if Topic(a.pub) != Topic(again) || Topic(a.pub) == Topic(b.pub) {
		t.Error("topics are not per key")
	}
	if bytes.Contains([]byte(Topic(a.pub)), []byte(string(a.pub[:4]))) {
		t.Error("the topic shows the key")
	}
}

func FuzzOpen(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	s := NewSealer(pub, priv, time.Now)
	env, _, _ := s.Seal(pub, 1, []byte("hello"))
	f.Add(env)
	f.Add([]byte("P2S1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s.Open(b) // must not panic
	})
}
