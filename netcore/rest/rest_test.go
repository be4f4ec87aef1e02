package rest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"p2pd/netcore/node"
	"p2pd/netcore/node/nodetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// api serves the REST API of a fresh node; it returns the base URL.
func api(t *testing.T) (string, *node.Node) {
	t.Helper()
	n := nodetest.Loopback(t)
	srv := New(n, Options{Title: "P2PD", Author: "test", Version: "v-test"})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return ts.URL, n
}

// call makes a request and decodes the JSON answer.
func call(t *testing.T, method, u string, body io.Reader, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: not JSON: %v", method, u, err)
		}
	}
	return resp.StatusCode, out
}

func get(t *testing.T, u string) map[string]any {
	t.Helper()
	status, out := call(t, http.MethodGet, u, nil)
	if status != http.StatusOK || out["error"] != float64(0) {
		t.Fatalf("GET %s: %d %v", u, status, out)
	}
	return out
}

// TestSeedSequence runs the seed library's documented sequence against
// two nodes, then the same to this node itself ("self").
func TestSeedSequence(t *testing.T) {
	a, _ := api(t)
	b, _ := api(t)
	if v := get(t, a+"/version"); v["title"] != "P2PD" || v["version"] != "v-test" {
		t.Errorf("version: %v", v)
	}
	peer := get(t, b+"/p2p/addr")["addr"].(string)
	for _, to := range []string{url.PathEscape(peer), "self"} {
		name := "con_" + to[:4]
		open := get(t, a+"/p2p/open/"+name+"/"+to)
		if open["name"] != name || open["strategy"] == "" || len(open["laddr"].([]any)) != 2 {
			t.Errorf("open: %v", open)
		}
		sent := get(t, a+"/p2p/send/"+name+"/ECHO%20hello,%20world!")
		if sent["sent"] != float64(len("ECHO hello, world!")) {
			t.Errorf("send: %v", sent)
		}
		got := get(t, a+"/p2p/recv/"+name)
		if got["data"] != "hello, world!" || len(got["client_tup"].([]any)) != 2 {
			t.Errorf("recv: %v", got)
		}
		// The un-prefixed forms are the same endpoints.
		get(t, a+"/send/"+name+"/ECHO%20again")
		if got := get(t, a+"/recv/"+name+"/timeout/5"); got["data"] != "again" {
			t.Errorf("recv without /p2p: %v", got)
		}
	}
	if cons := get(t, a+"/p2p/cons")["cons"].(map[string]any); len(cons) != 2 {
		t.Errorf("cons: %v", cons)
	}
	// An empty queue is an error after the timeout, not a hang.
	status, out := call(t, http.MethodGet, a+"/p2p/recv/con_self/timeout/0.2", nil)
	if status == http.StatusOK || out["error"] == float64(0) || out["msg"] == "" {
		t.Errorf("recv on an empty queue: %d %v", status, out)
	}
	get(t, a+"/p2p/close/con_self")
	if status, _ := call(t, http.MethodGet, a+"/p2p/send/con_self/x", nil); status != http.StatusNotFound {
		t.Errorf("send on a closed connection: %d", status)
	}
}

// TestBinary: bytes outside printable ASCII round-trip.
func TestBinary(t *testing.T) {
	a, _ := api(t)
	get(t, a+"/p2p/open/bin/self")
	payload := append([]byte("ECHO "), 0, 1, 2, 0xff, 0xfe, '\n', 0x80, 0x7f)
	status, out := call(t, http.MethodPost, a+"/p2p/binary/bin", bytes.NewReader(payload), "Content-Type", "application/octet-stream")
	if status != http.StatusOK || out["sent"] != float64(len(payload)) {
		t.Fatalf("POST binary: %d %v", status, out)
	}
	resp, err := http.Get(a + "/p2p/binary/bin")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, payload[len("ECHO "):]) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET binary: %q (%s)", got, resp.Header.Get("Content-Type"))
	}
}

// TestPipe: a raw TCP socket becomes a two-way relay to the peer.
func TestPipe(t *testing.T) {
	a, _ := api(t)
	get(t, a+"/p2p/open/p/self")
	u, _ := url.Parse(a)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The request and the first bytes for the peer in one write.
	io.WriteString(c, "GET /p2p/pipe/p HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\nECHO piped")
	r := bufio.NewReader(c)
	status, _ := r.ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("pipe answered %q", status)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	buf := make([]byte, len("piped"))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "piped" {
		t.Fatalf("through the pipe: %q %v", buf, err)
	}
	io.WriteString(c, "ECHO more")
	buf = make([]byte, len("more"))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "more" {
		t.Fatalf("second round: %q %v", buf, err)
	}
}

// TestSubscriptions: a subscription's queue gets the messages that match
// it; every matching queue gets a copy, the main one included.
func TestSubscriptions(t *testing.T) {
	a, _ := api(t)
	get(t, a+"/p2p/open/s/self")
	sub := "/msg_p/" + url.PathEscape("[hH]e[l]+o") + "/addr_p/"
	if out := get(t, a+"/p2p/sub/s"+sub); out["sub"] == nil {
		t.Errorf("sub: %v", out)
	}
	get(t, a+"/p2p/sub/s/msg_p/"+url.PathEscape("o$")+"/addr_p/")
	// A sender pattern that matches nobody here: its queue stays empty.
	get(t, a+"/p2p/sub/s/msg_p//addr_p/"+url.PathEscape(`^10\.9\.9\.9:`))
	for _, m := range []string{"hello", "bye", "Hello", "helo"} {
		get(t, a+"/p2p/send/s/ECHO%20"+m)
	}
	for _, want := range []string{"hello", "Hello", "helo"} {
		if got := get(t, a+"/p2p/recv/s"+sub)["data"]; got != want {
			t.Errorf("subscription got %q, want %q", got, want)
		}
	}
	for _, want := range []string{"hello", "Hello", "helo"} {
		if got := get(t, a+"/p2p/recv/s/msg_p/"+url.PathEscape("o$")+"/addr_p/")["data"]; got != want {
			t.Errorf("second subscription got %q, want %q", got, want)
		}
	}
	if status, _ := call(t, http.MethodGet, a+"/p2p/recv/s/msg_p//addr_p/"+url.PathEscape(`^10\.9\.9\.9:`)+"/timeout/0.1", nil); status != http.StatusRequestTimeout {
		t.Errorf("a queue for another sender got a message: %d", status)
	}
	// One that matches every sender gets what its message pattern picks.
	get(t, a+"/p2p/sub/s/msg_p/bye/addr_p/"+url.PathEscape(`:[0-9]+$`))
	get(t, a+"/p2p/send/s/ECHO%20bye")
	if got := get(t, a+"/p2p/recv/s/msg_p/bye/addr_p/"+url.PathEscape(`:[0-9]+$`))["data"]; got != "bye" {
		t.Errorf("sender-pattern queue got %q", got)
	}
	// The main queue matches everything, as the seed's does.
	for _, want := range []string{"hello", "bye", "Hello", "helo", "bye"} {
		if got := get(t, a+"/p2p/recv/s")["data"]; got != want {
			t.Errorf("main queue got %q, want %q", got, want)
		}
	}
	if status, out := call(t, http.MethodDelete, a+"/p2p/sub/s"+sub, nil); status != http.StatusOK || out["unsub"] == nil {
		t.Errorf("unsub: %d %v", status, out)
	}
	if status, _ := call(t, http.MethodGet, a+"/p2p/recv/s"+sub, nil); status != http.StatusNotFound {
		t.Errorf("recv from a removed subscription: %d", status)
	}
}

// TestBadInput: each mistake is a clear JSON error.
func TestBadInput(t *testing.T) {
	a, _ := api(t)
	get(t, a+"/p2p/open/x/self")
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/p2p/open/x/self", http.StatusConflict},
		{"/p2p/open/y/P2PD1-NOTANADDRESS", http.StatusBadRequest},
		{"/p2p/send/nobody/hi", http.StatusNotFound},
		{"/p2p/sub/x/msg_p/" + url.PathEscape("([") + "/addr_p/", http.StatusBadRequest},
		{"/p2p/recv/x/timeout/soon", http.StatusBadRequest},
		{"/p2p/nothing", http.StatusNotFound},
	} {
		status, out := call(t, http.MethodGet, a+c.path, nil)
		if status != c.status || out["error"] != float64(1) || out["msg"] == "" {
			t.Errorf("%s: %d %v, want %d with a message", c.path, status, out, c.status)
		}
	}
	// A path that is not valid URL encoding (Go's client will not send
	// one: write it by hand).
	u, _ := url.Parse(a)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /p2p/send/x/%zz HTTP/1.1\r\nHost: "+u.Host+"\r\nConnection: close\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad URL encoding: %v %v", resp, err)
	}
	big := bytes.Repeat([]byte{1}, maxBody+1)
	if status, _ := call(t, http.MethodPost, a+"/p2p/binary/x", bytes.NewReader(big)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize body: %d", status)
	}
}

// TestOrigins: loopback and file:// pages may use the API; other
// origins and non-loopback Host names are refused; preflights answer
// allowed origins only.
func TestOrigins(t *testing.T) {
	a, _ := api(t)
	for _, c := range []struct {
		hdr []string
		ok  bool
	}{
		{nil, true},
		{[]string{"Origin", "null"}, true},
		{[]string{"Origin", "http://127.0.0.1:8080"}, true},
		{[]string{"Origin", "http://localhost"}, true},
		{[]string{"Origin", "http://[::1]:3000"}, true},
		{[]string{"Origin", "http://evil.example"}, false},
		{[]string{"Origin", "http://127.0.0.1.evil.example"}, false},
		{[]string{"Host", "evil.example"}, false},
		{[]string{"Host", "rebind.example:12333"}, false},
		// An <img> or link from another site: no Origin, but the browser
		// says where it comes from.
		{[]string{"Sec-Fetch-Site", "cross-site"}, false},
		{[]string{"Sec-Fetch-Site", "none"}, true},
		{[]string{"Origin", "null", "Sec-Fetch-Site", "cross-site"}, true}, // a local file's fetch
	} {
		status, out := call(t, http.MethodGet, a+"/version", nil, c.hdr...)
		if ok := status == http.StatusOK; ok != c.ok {
			t.Errorf("%v: %d %v", c.hdr, status, out)
		}
	}
	req, _ := http.NewRequest(http.MethodOptions, a+"/p2p/open/x/self", nil)
	req.Header.Set("Origin", "http://localhost:8000")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8000" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	req.Header.Set("Origin", "http://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
	}
}

// FuzzPaths: no path makes the parsers panic, and what they accept
// round-trips through URL encoding.
func FuzzPaths(f *testing.F) {
	for _, s := range []string{"/p2p/recv/x/timeout/2", "/sub/x/msg_p/%5Bh%5D/addr_p/", "/p2p/send/x/a%2Fb", "//", "/p2p/recv/x/msg_p//addr_p/10.0.0.0%2F8/timeout/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		u, err := url.Parse(path)
		if err != nil {
			return
		}
		segs, err := segments(u)
		if err != nil || len(segs) < 2 {
			return
		}
		_, rest, err := recvArgs(segs[2:])
		if err != nil {
			return
		}
		subOf(rest)
	})
}
