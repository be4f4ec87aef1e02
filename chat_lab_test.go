package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/natlab"
)

// TestChatInLab: `p2pd chat` in host A sends typed lines to node B behind
// another NAT; B's history holds them, once each, and A's marks them
// delivered.
func TestChatInLab(t *testing.T) {
	nat := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: nat, B: nat, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	path, err := l.WriteNodeConfig("a-chat", l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homeA := t.TempDir()
	run := func(input string) string {
		cmd := p2pdIn(ctx, l, l.A.Host, homeA, "chat", v4Only(t, b.addr), "--config", path)
		cmd.Stdin = strings.NewReader(input)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("p2pd chat: %v\n%s\n%s", err, out.String(), errOut.String())
		}
		return out.String()
	}
	out := run("hello from A\nçà et là 👋\n")
	if !strings.Contains(out, "Connected by") || strings.Contains(out, "not delivered") {
		t.Errorf("chat printed:\n%s", out)
	}
	run("") // a second session: nothing pending, nothing sent twice
	hist := chatHistory(t, b.home)
	if strings.Count(hist, "hello from A") != 1 || strings.Count(hist, "çà et là 👋") != 1 {
		t.Errorf("B's history:\n%s", hist)
	}
	if mine := chatHistory(t, homeA); strings.Count(mine, `"receipt"`) != 2 {
		t.Errorf("A's history has no receipts:\n%s", mine)
	}
}

// chatHistory returns every history file under home's chat folder.
func chatHistory(t *testing.T, home string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(home, "chat", "*.jsonl"))
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}
