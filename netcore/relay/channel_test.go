package relay

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func TestParseChannelData(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		number  uint16
		payload []byte
		ok      bool
	}{
		{"payload", []byte{0x40, 0x01, 0, 3, 'a', 'b', 'c'}, 0x4001, []byte("abc"), true},
		{"padded over TCP", []byte{0x4f, 0xff, 0, 3, 'a', 'b', 'c', 0}, 0x4fff, []byte("abc"), true},
		{"empty", []byte{0x40, 0x00, 0, 0}, 0x4000, []byte{}, true},
		{"length beyond the message", []byte{0x40, 0x00, 0, 4, 'a', 'b', 'c'}, 0, nil, false},
		{"STUN message", []byte{0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42}, 0, nil, false},
		{"reserved range", []byte{0x80, 0x00, 0, 0}, 0, nil, false},
		{"short header", []byte{0x40, 0x00, 0}, 0, nil, false},
	} {
		number, payload, ok := parseChannelData(tc.in)
		if ok != tc.ok || number != tc.number || !bytes.Equal(payload, tc.payload) {
			t.Errorf("%s: got %#x %q %v, want %#x %q %v", tc.name, number, payload, ok, tc.number, tc.payload, tc.ok)
		}
	}
}

func TestChannelNumbers(t *testing.T) {
	cs := newChannels()
	p1, p2 := netip.MustParseAddrPort("192.0.2.1:1000"), netip.MustParseAddrPort("192.0.2.1:1001")
	c1, created, err := cs.get(p1)
	if err != nil || !created || c1.number != channelFirst {
		t.Fatalf("first channel: %+v, %v, %v", c1, created, err)
	}
	if again, created, _ := cs.get(p1); again != c1 || created {
		t.Fatalf("the same peer got another channel: %+v", again)
	}
	c2, _, _ := cs.get(p2)
	if c2.number != channelFirst+1 || cs.lookup(c2.number) != c2 {
		t.Fatalf("second channel %#x, lookup %v", c2.number, cs.lookup(c2.number))
	}
	close(c1.ready) // bound
	if b := cs.bound(); len(b) != 1 || b[0] != c1 {
		t.Fatalf("bound %v, want only the first", b)
	}
	cs.drop(c2)
	if cs.lookup(c2.number) != nil {
		t.Fatal("a dropped channel is still found by number")
	}
	c3, created, _ := cs.get(p2)
	if !created || c3.number != channelFirst+2 {
		t.Fatalf("after a failed binding: channel %#x, created %v; want a fresh number", c3.number, created)
	}
	cs.next = channelLast + 1
	if _, _, err := cs.get(netip.MustParseAddrPort("192.0.2.9:1")); err == nil {
		t.Fatal("a channel beyond the last number")
	}
}

// boundAllocation is an Allocation over UDP towards server, with a channel
// bound to peer, and without pion: enough for the data path.
func boundAllocation(t *testing.T, server *net.UDPConn, peer netip.AddrPort) (*Allocation, *channel) {
	t.Helper()
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	a := &Allocation{
		server: server.LocalAddr().(*net.UDPAddr).AddrPort(), sock: sock, udp: sock,
		in: make(chan datagram, 8), closing: make(chan struct{}), rd: newDeadline(), wd: newDeadline(), chans: newChannels(),
	}
	ch, _, err := a.chans.get(peer)
	if err != nil {
		t.Fatal(err)
	}
	close(ch.ready)
	return a, ch
}

// TestBurstLeavesAsChannelData: a burst of packets quic-go hands over with
// a segment size leaves as one ChannelData message per packet, each with
// its own length, the last one shorter.
func TestBurstLeavesAsChannelData(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("segmented sends (GSO) are Linux's")
	}
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	peer := netip.MustParseAddrPort("198.51.100.7:4000")
	a, ch := boundAllocation(t, server, peer)
	c := &udpPacketConn{packetConn{a: a, local: &net.UDPAddr{IP: net.IPv4(203, 0, 113, 1), Port: 50000}}}

	const seg = 1000
	burst := make([]byte, 3*seg+123)
	for i := range burst {
		burst[i] = byte(i / seg) // each packet's bytes name it
	}
	n, _, err := c.WriteMsgUDP(burst, gsoControl(seg), net.UDPAddrFromAddrPort(peer))
	if err != nil || n != len(burst) {
		t.Fatalf("WriteMsgUDP: %d, %v", n, err)
	}
	server.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65536)
	for i, want := range []int{seg, seg, seg, 123} {
		m, err := server.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		number, payload, ok := parseChannelData(buf[:m])
		if !ok || number != ch.number || len(payload) != want || m != channelHeader+want {
			t.Fatalf("datagram %d: %d bytes, channel %#x, payload %d bytes (ok %v); want %d bytes on %#x",
				i, m, number, len(payload), ok, want, ch.number)
		}
		if payload[0] != byte(i) || payload[len(payload)-1] != byte(i) {
			t.Fatalf("datagram %d carries packet %d's bytes", i, payload[0])
		}
	}
	// Without a segment size the write is one datagram.
	if _, _, err := c.WriteMsgUDP([]byte("one"), nil, net.UDPAddrFromAddrPort(peer)); err != nil {
		t.Fatal(err)
	}
	if m, _ := server.Read(buf); !bytes.Equal(buf[:m], append([]byte{byte(ch.number >> 8), byte(ch.number), 0, 3}, "one"...)) {
		t.Fatalf("single datagram % x", buf[:m])
	}
}

// TestReadBatch: ReadBatch waits for one datagram, then takes what has
// arrived besides, up to the batch's size.
func TestReadBatch(t *testing.T) {
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	peer := netip.MustParseAddrPort("198.51.100.7:4000")
	a, ch := boundAllocation(t, server, peer)
	c := &udpPacketConn{packetConn{a: a, local: &net.UDPAddr{IP: net.IPv4(203, 0, 113, 1), Port: 50000}}}
	for _, p := range []string{"one", "two", "three"} {
		a.deliver([]byte(p), ch.from)
	}
	ms := make([]ipv4.Message, 2)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 1452)}
	}
	read := func() []string {
		n, err := c.ReadBatch(ms, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms[:n] {
			if m.Addr.String() != peer.String() {
				t.Fatalf("datagram from %v, want %v", m.Addr, peer)
			}
			got = append(got, string(m.Buffers[0][:m.N]))
		}
		return got
	}
	if got := read(); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("first batch %q", got)
	}
	if got := read(); len(got) != 1 || got[0] != "three" {
		t.Fatalf("second batch %q", got)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := c.ReadBatch(ms, 0); err == nil {
		t.Fatal("ReadBatch with nothing queued returned before its deadline")
	}
}
