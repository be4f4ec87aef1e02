package stun

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun"
)

// liar is a UDP "server" on loopback that answers each request with the
// replies its script builds: the hostile and broken answers a client must
// not believe, then (maybe) a good one.
type liar struct {
	primary, other *net.UDPConn
	script         func(req *stun.Message, from *net.UDPAddr) []datagram
	done           chan struct{}
}

type datagram struct {
	via  *net.UDPConn // nil: the primary socket
	data []byte
}

func newLiar(t *testing.T, script func(l *liar, req *stun.Message, from *net.UDPAddr) []datagram) *liar {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	l := &liar{primary: listen(), other: listen(), done: make(chan struct{})}
	l.script = func(req *stun.Message, from *net.UDPAddr) []datagram { return script(l, req, from) }
	go l.serve()
	t.Cleanup(func() { l.primary.Close(); l.other.Close(); <-l.done })
	return l
}

func (l *liar) serve() {
	defer close(l.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := l.primary.ReadFromUDP(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if req.Decode() != nil {
			continue
		}
		for _, d := range l.script(req, from) {
			via := d.via
			if via == nil {
				via = l.primary
			}
			via.WriteToUDP(d.data, from)
		}
	}
}

func (l *liar) addr() netip.AddrPort      { return l.primary.LocalAddr().(*net.UDPAddr).AddrPort() }
func (l *liar) otherAddr() netip.AddrPort { return l.other.LocalAddr().(*net.UDPAddr).AddrPort() }

// stunReply builds a Binding success response to req with the given extra setters.
func stunReply(t *testing.T, req *stun.Message, from *net.UDPAddr, extra ...stun.Setter) []byte {
	setters := append([]stun.Setter{req, stun.BindingSuccess, &stun.XORMappedAddress{IP: from.IP, Port: from.Port}}, extra...)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// client opens a STUN socket on loopback for the test.
func client(t *testing.T) *Conn {
	t.Helper()
	c, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bindWithin sends one Binding request to server and waits at most d.
func bindWithin(c *Conn, d time.Duration, server netip.AddrPort, change Change, other netip.AddrPort) (Binding, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Bind(ctx, server, change, other)
}

func TestHostileRepliesAreIgnored(t *testing.T) {
	l := newLiar(t, func(l *liar, req *stun.Message, from *net.UDPAddr) []datagram {
		good := stunReply(t, req, from, &stun.OtherAddress{IP: net.IPv4(127, 0, 0, 1), Port: l.other.LocalAddr().(*net.UDPAddr).Port}, stun.Fingerprint)
		wrongTx := stunReply(t, &stun.Message{TransactionID: stun.NewTransactionID()}, from)
		badFingerprint := append([]byte(nil), good...)
		badFingerprint[len(badFingerprint)-1] ^= 0xff
		truncated := append([]byte(nil), good[:len(good)-6]...)
		// Claim the attributes go on past the end of the datagram.
		lying := append([]byte(nil), good...)
		lying[3] += 8
		noMapped, _ := stun.Build(req, stun.BindingSuccess)
		badMapped := stunReply(t, req, &net.UDPAddr{IP: net.IPv4zero, Port: 0})
		return []datagram{
			{data: []byte("not stun at all")},
			{data: wrongTx},
			{data: badFingerprint},
			{data: truncated},
			{data: lying},
			{data: noMapped.Raw},
			{data: badMapped},
			{via: l.other, data: good}, // right message, wrong source
			{data: good},
		}
	})
	c := client(t)
	b, err := bindWithin(c, 5*time.Second, l.addr(), ChangeNone, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Mapped != c.LocalAddr() || b.Other != l.otherAddr() || b.From != l.addr() {
		t.Errorf("binding = %+v", b)
	}
	// Every broken or hostile reply before the good one was ignored.
	if c.Ignored() != 8 {
		t.Errorf("ignored %d replies, want the 8 bad ones", c.Ignored())
	}
}

func TestChangeRequestNeedsTheRightSource(t *testing.T) {
	var fromOther atomic.Bool
	l := newLiar(t, func(l *liar, req *stun.Message, from *net.UDPAddr) []datagram {
		d := datagram{data: stunReply(t, req, from)}
		if fromOther.Load() {
			d.via = l.other
		}
		return []datagram{d}
	})
	c := client(t)
	// A server that ignores CHANGE-REQUEST answers from its primary address:
	// that answer must not count as passing the filter.
	if _, err := bindWithin(c, time.Second, l.addr(), ChangeIP|ChangePort, l.otherAddr()); !errors.Is(err, ErrChangeIgnored) {
		t.Errorf("answer from the wrong source: %v, want ErrChangeIgnored", err)
	}
	if c.Ignored() == 0 {
		t.Error("the wrong-source answers were not counted")
	}
	fromOther.Store(true)
	if _, err := bindWithin(c, 5*time.Second, l.addr(), ChangeIP|ChangePort, l.otherAddr()); err != nil {
		t.Errorf("answer from the alternate address refused: %v", err)
	}
	if _, err := bindWithin(c, 5*time.Second, l.addr(), ChangePort, netip.AddrPort{}); err == nil {
		t.Error("a change request without OTHER-ADDRESS was sent")
	}
}

func TestErrorResponse(t *testing.T) {
	l := newLiar(t, func(l *liar, req *stun.Message, from *net.UDPAddr) []datagram {
		m, _ := stun.Build(req, stun.BindingError, stun.CodeBadRequest)
		return []datagram{{data: m.Raw}}
	})
	if _, err := bindWithin(client(t), 5*time.Second, l.addr(), ChangeNone, netip.AddrPort{}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("err = %v, want the server's 400 error", err)
	}
}

func TestRetransmitsUntilAnswered(t *testing.T) {
	var seen int
	l := newLiar(t, func(l *liar, req *stun.Message, from *net.UDPAddr) []datagram {
		seen++
		if seen < 3 { // the first two requests are "lost"
			return nil
		}
		return []datagram{{data: stunReply(t, req, from)}}
	})
	b, err := bindWithin(client(t), 5*time.Second, l.addr(), ChangeNone, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	if b.RTT < initialRTO+2*initialRTO {
		t.Errorf("answered after %v: the retransmission schedule is off", b.RTT)
	}
}

func FuzzParseResponse(f *testing.F) {
	tx := stun.NewTransactionID()
	req := &stun.Message{TransactionID: tx}
	from := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 2), Port: 4000}
	good, _ := stun.Build(req, stun.BindingSuccess, &stun.XORMappedAddress{IP: from.IP, Port: from.Port},
		&stun.OtherAddress{IP: net.IPv4(203, 0, 113, 2), Port: 3479}, stun.Fingerprint)
	f.Add(good.Raw)
	f.Add(good.Raw[:24])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseResponse(b, tx)
		if err == nil && !usable(a.mapped) {
			t.Fatalf("accepted an unusable mapped address %v", a.mapped)
		}
	})
}

func TestAnalyzePorts(t *testing.T) {
	seq := func(local0, ext0, dl, de uint16) [][2]uint16 {
		var s [][2]uint16
		for i := range uint16(5) {
			s = append(s, [2]uint16{local0 + i*dl, ext0 + i*de})
		}
		return s
	}
	for _, tc := range []struct {
		name       string
		samples    [][2]uint16
		sequential bool
		want       Delta
		step       int
	}{
		{"equal", [][2]uint16{{5000, 5000}, {6123, 6123}, {40001, 40001}, {777, 777}, {9000, 9000}}, false, DeltaEqual, 0},
		{"equal with one stolen port", [][2]uint16{{5000, 5000}, {6123, 6124}, {40001, 40001}, {777, 777}, {9000, 9000}}, false, DeltaEqual, 0},
		{"preserving", [][2]uint16{{5000, 15000}, {5003, 15003}, {5100, 15100}, {5090, 15090}, {6000, 16000}}, false, DeltaPreserving, 0},
		{"independent +1", [][2]uint16{{5000, 40000}, {7000, 40001}, {6000, 40002}, {9000, 40003}, {1234, 40004}}, false, DeltaIndependent, 1},
		{"independent +2 across the wrap", seq(3000, 65532, 17, 2), false, DeltaIndependent, 2},
		{"dependent +3", seq(20000, 50000, 1, 3), true, DeltaDependent, 3},
		{"random", [][2]uint16{{5000, 812}, {5001, 33310}, {5002, 9}, {5003, 60123}, {5004, 2222}}, true, DeltaRandom, 0},
		{"too few", [][2]uint16{{5000, 5000}, {5001, 5001}}, false, DeltaUnknown, 0},
		{"three random samples prove nothing", [][2]uint16{{5000, 23456}, {5001, 23500}, {5002, 61234}}, true, DeltaUnknown, 0},
		{"preserving with one collided sample", [][2]uint16{{5000, 15000}, {5003, 15003}, {5100, 33333}, {5090, 15090}, {6000, 16000}}, false, DeltaPreserving, 0},
		{"+1 with one outlier", [][2]uint16{{5000, 40000}, {7000, 40001}, {6000, 55555}, {9000, 40003}, {1234, 40004}}, false, DeltaIndependent, 1},
		{"+1 with the counter bumped once", [][2]uint16{{5000, 40000}, {7000, 40001}, {6000, 40003}, {9000, 40004}, {1234, 40005}}, false, DeltaIndependent, 1},
	} {
		got := analyzePorts(tc.samples, tc.sequential)
		if got.Kind != tc.want || got.Step != tc.step {
			t.Errorf("%s: %v step %d, want %v step %d", tc.name, got.Kind, got.Step, tc.want, tc.step)
		}
		if got.Predictable() != (tc.want >= DeltaEqual && tc.want <= DeltaDependent) {
			t.Errorf("%s: predictable = %v", tc.name, got.Predictable())
		}
	}
}

func TestNATTypeLabels(t *testing.T) {
	for _, tc := range []struct {
		p    Profile
		want NATType
	}{
		{Profile{}, TypeBlocked},
		{Profile{UDP: true, Filtering: EndpointIndependent}, TypeOpen},
		{Profile{UDP: true, Filtering: AddressPortDependent}, TypeFirewall},
		{Profile{UDP: true}, TypeUnknown}, // no NAT, filtering not measured
		{Profile{TCP: true, NAT: true}, TypeUDPBlocked},
		{Profile{UDP: true, NAT: true, Mapping: EndpointIndependent, Filtering: EndpointIndependent}, TypeFullCone},
		{Profile{UDP: true, NAT: true, Mapping: EndpointIndependent, Filtering: AddressDependent}, TypeRestricted},
		{Profile{UDP: true, NAT: true, Mapping: EndpointIndependent, Filtering: AddressPortDependent}, TypePortRestricted},
		{Profile{UDP: true, NAT: true, Mapping: AddressDependent, Filtering: EndpointIndependent}, TypeSymmetric},
		{Profile{UDP: true, NAT: true, Mapping: AddressPortDependent}, TypeSymmetric},
	} {
		if got := tc.p.Type(); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.p, got, tc.want)
		}
		var back NATType
		text, _ := tc.want.MarshalText()
		if back.UnmarshalText(text); back != tc.want {
			t.Errorf("%v does not round-trip through text", tc.want)
		}
	}
}
