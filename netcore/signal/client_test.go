package signal

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"p2pd/netcore/config"
)

// TestStartNotReady: a client whose broker's name does not resolve
// starts at once, keeps looking, and says at once why it is not ready
// (waiting would not help); Close stops it without leaving a goroutine
// behind.
func TestStartNotReady(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	subscribed := make(chan struct{}, 1)
	start := time.Now()
	c, err := Start(NewSealer(pub, priv, time.Now), []config.Endpoint{{Proto: "tcp", Host: "no..such.broker", Port: 1883}}, nil,
		WithSubscribed(func() { subscribed <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Start waited %v", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start = time.Now()
	err = c.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "no..such.broker") || !strings.Contains(err.Error(), "looking again") {
		t.Errorf("Ready: %v; want why no..such.broker is not reached", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Ready waited %v for a name that does not resolve", took)
	}
	if b := c.Brokers(); len(b) != 0 {
		t.Errorf("brokers %v", b)
	}
	c.Close()
	if err := c.Ready(context.Background()); err == nil {
		t.Error("Ready after Close did not fail")
	}
	select {
	case <-subscribed:
		t.Error("subscribed to nothing")
	default:
	}
}

func TestStartWithoutBrokers(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := Start(NewSealer(pub, priv, time.Now), nil, nil); err == nil {
		t.Error("Start with no broker did not fail")
	}
}
