package main

import (
	"strings"
	"testing"
	"time"
)

// TestPrintConnect: the report says how the echo went, and why it failed.
func TestPrintConnect(t *testing.T) {
	for _, c := range []struct {
		r    connectReport
		want string
	}{
		{connectReport{Strategy: "direct", ConnectTime: 12 * time.Millisecond, Echo: true, EchoTime: 600 * time.Microsecond},
			"Connected by direct in 12ms; echo came back in 600µs."},
		{connectReport{Strategy: "reverse", ConnectTime: 30 * time.Millisecond, EchoError: "stream reset"},
			"Connected by reverse in 30ms; echo FAILED: stream reset."},
	} {
		var b strings.Builder
		printConnect(&b, c.r)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("printed %q, want %q", b.String(), c.want)
		}
	}
}
