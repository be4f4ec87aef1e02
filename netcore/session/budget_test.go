package session

import (
	"errors"
	"testing"
)

// TestWindowBudget: windows grow together up to growthLimit, a new
// stream's first window is always granted, and an ended stream's growth
// is free again (and it grows no more).
func TestWindowBudget(t *testing.T) {
	var b windowBudget
	one, _ := b.span()
	two, _ := b.span()
	if err := one.ReserveMemory(growthLimit/2, 128); err != nil {
		t.Fatal(err)
	}
	if err := two.ReserveMemory(growthLimit/2, 128); err != nil {
		t.Fatalf("the budget's last part: %v", err)
	}
	if err := two.ReserveMemory(1, 128); !errors.Is(err, errOverBudget) {
		t.Fatalf("growth past the budget: %v, want errOverBudget", err)
	}
	three, _ := b.span()
	if err := three.ReserveMemory(256<<10, 255); err != nil {
		t.Fatalf("a new stream's first window: %v", err)
	}
	two.ReleaseMemory(1 << 20)
	if err := three.ReserveMemory(1<<20, 128); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	one.Done()
	if err := one.ReserveMemory(1, 128); !errors.Is(err, errOverBudget) {
		t.Fatalf("growth after the stream ended: %v, want errOverBudget", err)
	}
	if err := three.ReserveMemory(growthLimit/2, 128); err != nil {
		t.Fatalf("after a stream ended: %v", err)
	}
	if err := three.ReserveMemory(1, 128); !errors.Is(err, errOverBudget) {
		t.Fatalf("growth past the budget again: %v, want errOverBudget", err)
	}
}
