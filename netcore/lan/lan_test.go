package lan

import (
	"testing"
	"time"
)

// TestLimiterBySender: the limiter keys by beacon text, so one node heard
// over IPv4 and IPv6 (two source addresses, one text) is let through once
// per interval, while another node in the same instant is not held up.
func TestLimiterBySender(t *testing.T) {
	l := &limiter{every: perSenderEvery, last: map[string]time.Time{}}
	now := time.Now()
	a, b := []byte("P2PD1-AAAAA"), []byte("P2PD1-BBBBB")
	if !l.allow(a, now) {
		t.Fatal("a's first beacon was held back")
	}
	if l.allow(a, now.Add(time.Millisecond)) {
		t.Error("a's beacon over the other family was let through within the interval")
	}
	if !l.allow(b, now.Add(time.Millisecond)) {
		t.Error("b was held back by a's beacons")
	}
	if l.allow(a, now.Add(perSenderEvery-time.Millisecond)) {
		t.Error("a was let through again before the interval ended")
	}
	if !l.allow(a, now.Add(perSenderEvery)) {
		t.Error("a's beacon after the interval was held back")
	}
}

// TestLimiterBounded: a flood of distinct beacons fills the limiter only
// up to maxSenders; once they are stale, prune makes room for new senders.
func TestLimiterBounded(t *testing.T) {
	l := &limiter{every: perSenderEvery, last: map[string]time.Time{}}
	now := time.Now()
	for i := range maxSenders {
		if !l.allow([]byte{byte(i), byte(i >> 8)}, now) {
			t.Fatalf("sender %d of %d was held back", i, maxSenders)
		}
	}
	late := []byte("one more")
	if l.allow(late, now) {
		t.Error("a sender beyond maxSenders was let in")
	}
	l.prune(now.Add(perSenderEvery / 2))
	if len(l.last) != maxSenders {
		t.Errorf("prune dropped senders heard within the interval: %d left", len(l.last))
	}
	l.prune(now.Add(perSenderEvery))
	if len(l.last) != 0 {
		t.Errorf("prune kept %d stale senders", len(l.last))
	}
	if !l.allow(late, now.Add(perSenderEvery)) {
		t.Error("a new sender was held back after prune")
	}
}
