package rest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"p2pd/netcore/node/nodetest"
)

// chromium finds headless Chromium (Debian's chromium-headless-shell or
// chromium), or skips (fails under CI).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium-headless-shell", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("headless Chromium is missing (packaging/deps.sh test installs chromium-headless-shell)")
	}
	t.Skip("headless Chromium is missing")
	return ""
}

// dumpDOM loads page in headless Chromium and returns the DOM once the
// page's script has had its time.
func dumpDOM(t *testing.T, bin, page string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=15000", "--dump-dom"}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, page)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return string(out)
}

// TestBrowser: the example page (examples/rest) uses the API from a local
// file (origin "null"); the same page served from a non-loopback origin
// (a host name mapped to 127.0.0.1) is refused.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	page, err := filepath.Abs("../../examples/rest/index.html")
	if err != nil {
		t.Fatal(err)
	}
	// The API, recording the origins that reach it.
	var mu sync.Mutex
	var origins []string
	srv := New(nodetest.Loopback(t), Options{Title: "P2PD", Version: "v-test"})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		origins = append(origins, r.Header.Get("Origin"))
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer ts.Close()
	q := "?api=" + url.QueryEscape(ts.URL) + "&to=self"

	dom := dumpDOM(t, bin, "file://"+page+q)
	t.Logf("local page: %s", pre(dom))
	if !strings.Contains(dom, "version: P2PD v-test") || !strings.Contains(dom, "echo: hello from a page") || !strings.Contains(dom, "done") {
		t.Errorf("the local page could not use the API:\n%s", dom)
	}

	// The same page from http://friend.example:PORT, which Chromium
	// resolves to 127.0.0.1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewUnstartedServer(http.FileServer(http.Dir(filepath.Dir(page))))
	site.Listener.Close()
	site.Listener = ln
	site.Start()
	defer site.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	remote := "http://friend.example:" + strconv.Itoa(port) + "/index.html" + q
	dom = dumpDOM(t, bin, remote, "--host-resolver-rules=MAP friend.example 127.0.0.1")
	t.Logf("page from friend.example: %s", pre(dom))
	if !strings.Contains(dom, "refused or failed") || strings.Contains(dom, "version: P2PD") {
		t.Errorf("a page from another origin used the API:\n%s", dom)
	}
	// The browser did ask: the API itself refused it.
	mu.Lock()
	defer mu.Unlock()
	if origin := "http://friend.example:" + strconv.Itoa(port); !slices.Contains(origins, origin) {
		t.Errorf("the API never saw origin %s (saw %q): the refusal was not its own", origin, origins)
	}
}

// pre returns the text of the page's <pre> element.
func pre(dom string) string {
	_, after, _ := strings.Cut(dom, "<pre id=\"out\">")
	text, _, _ := strings.Cut(after, "</pre>")
	return text
}
