package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/natlab"
)

// TestRESTInLab runs the seed library's documented REST sequence with curl
// inside host A, whose `p2pd rest` connects to node B behind another NAT.
func TestRESTInLab(t *testing.T) {
	nat := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: nat, B: nat, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	path, err := l.WriteNodeConfig("a-rest", l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := p2pdIn(ctx, l, l.A.Host, t.TempDir(), "rest", "--config", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("p2pd rest did not stop cleanly: %v", err)
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "127.0.0.1:12333") {
		t.Fatalf("p2pd rest printed %q: %v", line, err)
	}
	curl := func(p string) map[string]any {
		t.Helper()
		body, err := l.Exec(ctx, l.A.Host, "curl", "-sS", "--max-time", "30", "http://127.0.0.1:12333"+p)
		if err != nil {
			t.Fatalf("curl %s: %v", p, err)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || m["error"] != float64(0) {
			t.Fatalf("curl %s: %s (%v)", p, body, err)
		}
		return m
	}
	if v := curl("/version"); v["title"] != "P2PD" {
		t.Errorf("version: %v", v)
	}
	if a := curl("/p2p/addr"); !strings.HasPrefix(a["addr"].(string), "P2PD") {
		t.Errorf("addr: %v", a)
	}
	open := curl("/p2p/open/con_name/" + url.PathEscape(v4Only(t, b.addr)))
	t.Logf("opened by %v over %v", open["strategy"], open["transport"])
	curl("/p2p/send/con_name/ECHO%20hello,%20world!")
	if got := curl("/p2p/recv/con_name"); got["data"] != "hello, world!" {
		t.Errorf("recv: %v", got)
	}
}
