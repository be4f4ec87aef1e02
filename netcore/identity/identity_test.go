package identity

import (
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	a, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	b, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Public.Equal(b.Public) || a.ID() != b.ID() {
		t.Error("second start made a new identity")
	}
	if s := a.ID().String(); len(s) != 16 || strings.ToLower(s) != s {
		t.Errorf("id string %q", s)
	}
}

func TestBadKeyFilesAreErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"garbage", "not a key", 0o600, "corrupt"},
		{"truncated PEM", "-----BEGIN PRIVATE KEY-----\nMC4CAQA\n-----END PRIVATE KEY-----\n", 0o600, "corrupt"},
		{"too open", "whatever", 0o644, "readable by others"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, KeyFile)
		os.WriteFile(path, []byte(tc.content), tc.mode)
		os.Chmod(path, tc.mode)
		_, err := LoadOrCreate(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if data, _ := os.ReadFile(path); string(data) != tc.content {
			t.Errorf("%s: the bad key file was replaced", tc.name)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// handshake runs a TLS handshake over loopback TCP and returns both sides'
// errors and the key the server saw.
func handshake(t *testing.T, client, server *Identity, clientWants, serverWants ed25519.PublicKey) (serverSaw ed25519.PublicKey, clientErr, serverErr error) {
	t.Helper()
	cc, err := client.TLSConfig(clientWants)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := server.TLSConfig(serverWants)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			serverErr = err
			return
		}
		defer c.Close()
		s := c.(*tls.Conn)
		s.SetDeadline(time.Now().Add(5 * time.Second))
		if serverErr = s.Handshake(); serverErr == nil {
			serverSaw, _ = PeerKey(s.ConnectionState())
		}
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cc)
	clientErr = err
	if err == nil {
		if c.ConnectionState().NegotiatedProtocol != ALPN {
			t.Errorf("negotiated %q", c.ConnectionState().NegotiatedProtocol)
		}
		// In TLS 1.3 the server's verdict on our certificate comes after our
		// handshake: an alert, or the close that follows success.
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
			clientErr = err
		}
		c.Close()
	}
	<-done
	return serverSaw, clientErr, serverErr
}

func TestPinnedTLS(t *testing.T) {
	alice, _ := New()
	bob, _ := New()
	mallory, _ := New()

	if saw, cerr, serr := handshake(t, alice, bob, bob.Public, nil); cerr != nil || serr != nil || !saw.Equal(alice.Public) {
		t.Fatalf("alice -> bob: %v / %v, server saw %x", cerr, serr, saw)
	}
	if _, cerr, serr := handshake(t, alice, bob, bob.Public, alice.Public); cerr != nil || serr != nil {
		t.Errorf("mutual pinning: %v / %v", cerr, serr)
	}
	// Mallory answers in Bob's place: Alice must refuse.
	if _, cerr, _ := handshake(t, alice, mallory, bob.Public, nil); !errors.Is(cerr, ErrWrongPeer) {
		t.Errorf("man in the middle: client error %v, want ErrWrongPeer", cerr)
	}
	// Bob expects Alice, Mallory connects.
	if _, _, serr := handshake(t, mallory, bob, bob.Public, alice.Public); !errors.Is(serr, ErrWrongPeer) {
		t.Errorf("wrong client: server error %v, want ErrWrongPeer", serr)
	}
	// Connecting to oneself works.
	if _, cerr, serr := handshake(t, alice, alice, alice.Public, nil); cerr != nil || serr != nil {
		t.Errorf("self: %v / %v", cerr, serr)
	}
}

func TestIDOrder(t *testing.T) {
	a, _ := New()
	b, _ := New()
	if a.ID().Compare(b.ID()) != -b.ID().Compare(a.ID()) || a.ID().Compare(a.ID()) != 0 {
		t.Error("ids do not order consistently")
	}
}

// TestHexRoundTrip: Hex and ParseHex agree, and a short or garbled id is
// an error.
func TestHexRoundTrip(t *testing.T) {
	id := ID{1, 2, 3, 255}
	got, err := ParseHex(id.Hex())
	if err != nil || got != id {
		t.Errorf("ParseHex(Hex()) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0102", "zz" + id.Hex()[2:], id.Hex() + "00"} {
		if _, err := ParseHex(bad); err == nil {
			t.Errorf("ParseHex(%q) took it", bad)
		}
	}
}
