// Package addr encodes a node's address: one string holding everything a
// friend needs to reach it — its public key; per network interface and
// address family its external and internal IP, listen port and NAT
// profile; and the signaling brokers and TURN relays it uses — compact
// enough for a QR code a phone reads off a laptop screen.
//
// # Grammar
//
//	address  = "P2PD" version "-" groups        e.g. P2PD1-AEAQC-AFQGE-...
//	uri      = "p2pd:" address
//	version  = "1"
//	groups   = 1*5base32 *( "-" 1*5base32 )    RFC 4648 base32, upper case, no padding
//
// Parsing ignores case, spaces and hyphens, so an address read aloud or
// retyped still parses; the checksum catches typos. The base32 text is
// QR's alphanumeric alphabet, which packs 5.5 bits a symbol.
//
// The base32 decodes to (all integers big-endian):
//
//	payload   = key ifcount *interface servers
//	key       = 32 OCTET                        Ed25519 public key
//	ifcount   = OCTET                           1 to 4 interfaces
//	interface = families [v4] [v6]              families: bit 0 IPv4, bit 1 IPv6
//	v4 / v6   = flags external [internal] port [extport] nat
//	flags     = OCTET                           bit 0: internal address follows (else = external)
//	                                            bit 1: external address known
//	                                            bit 2: external port follows (a port mapping
//	                                                   that differs from the listen port)
//	external  = 4 / 16 OCTET                    zeros when unknown
//	port      = 2 OCTET                         1 to 65535
//	nat       = OCTET OCTET                     mapping<<6 | filtering<<4 | delta<<1 | translated; step
//	servers   = count *server count *server     MQTT brokers, then TURN relays (0 to 4 each)
//	server    = kind ip port                    kind: bit 0 IPv6, bit 7 TCP (relays)
//	checksum  = 4 OCTET                         first 4 octets of SHA-256(version payload)
//
// Servers are written as addresses, not as indexes into P2PD's built-in
// lists, so a release that changes its lists cannot break an address.
package addr

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"p2pd/netcore/stun"
)

// Version is the address format this package writes.
const Version = 1

// Limits on what an address carries: enough for a laptop with Wi-Fi and
// Ethernet, small enough for the QR code.
const (
	MaxInterfaces = 4
	MaxServers    = 4
)

// Address is everything a peer needs to reach a node.
type Address struct {
	Key        ed25519.PublicKey
	Interfaces []Interface
	Brokers    []Server // MQTT brokers the node listens on for signaling
	Relays     []Server // TURN relays the node can use
}

// Interface is one network interface's endpoints; either may be nil.
type Interface struct {
	V4, V6 *Endpoint
}

// Endpoint is where a node listens on one address family.
type Endpoint struct {
	// External is the address the internet sees (invalid if unknown).
	External netip.Addr
	// Internal is the interface's own address (the same as External when
	// not translated).
	Internal netip.Addr
	// Port is the node's listen port.
	Port uint16
	// ExternalPort is the port a router maps to Port, when it differs (0
	// otherwise).
	ExternalPort uint16
	NAT          NATProfile
}

// PublicPort returns the port peers reach on the external address.
func (ep *Endpoint) PublicPort() uint16 {
	if ep.ExternalPort != 0 {
		return ep.ExternalPort
	}
	return ep.Port
}

// NATProfile is the part of a NAT profile a peer needs to pick a strategy
// and predict ports.
type NATProfile struct {
	Translated bool
	Mapping    stun.Behaviour
	Filtering  stun.Behaviour
	Ports      stun.Delta
	Step       int8
}

// Server is a broker or relay.
type Server struct {
	Addr netip.AddrPort
	TCP  bool // relays: TURN over TCP
}

// Errors from Parse, each a different reason an address is not usable.
var (
	ErrChecksum      = errors.New("the address has a typo (its checksum does not match)")
	ErrVersion       = errors.New("the address is of a version this P2PD does not know; update P2PD")
	ErrTruncated     = errors.New("the address is cut short")
	ErrTooLong       = errors.New("the address has extra characters at the end")
	ErrNotAddress    = errors.New("this is not a P2PD address (it should start with P2PD)")
	ErrTooMany       = errors.New("the address lists too many interfaces or servers")
	ErrInvalidIP     = errors.New("the address holds an invalid IP address")
	ErrInvalidPort   = errors.New("the address holds port 0")
	ErrInvalidFormat = errors.New("the address holds values this version does not allow")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// prefix starts every address.
const prefix = "P2PD"

// uriScheme starts the URI form.
const uriScheme = "p2pd:"

// checksumLen is the checksum's length: 4 octets make a random typo
// go unnoticed once in four billion.
const checksumLen = 4

// String returns the address in its canonical text form.
func (a *Address) String() string {
	s, err := a.Encode()
	if err != nil {
		return "invalid address: " + err.Error()
	}
	return s
}

// URI returns the address as a p2pd: link.
func (a *Address) URI() (string, error) {
	s, err := a.Encode()
	return uriScheme + s, err
}

// Encode returns the canonical text form, or an error if the address
// breaks the format's limits.
func (a *Address) Encode() (string, error) {
	body, err := a.marshal()
	if err != nil {
		return "", err
	}
	text := b32.EncodeToString(body)
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d", prefix, Version)
	for i := 0; i < len(text); i += 5 {
		b.WriteByte('-')
		b.WriteString(text[i:min(i+5, len(text))])
	}
	return b.String(), nil
}

func (a *Address) marshal() ([]byte, error) {
	if len(a.Key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: the key is %d bytes", ErrInvalidFormat, len(a.Key))
	}
	if len(a.Interfaces) == 0 || len(a.Interfaces) > MaxInterfaces || len(a.Brokers) > MaxServers || len(a.Relays) > MaxServers {
		return nil, fmt.Errorf("%w (%d interfaces, %d brokers, %d relays)", ErrTooMany, len(a.Interfaces), len(a.Brokers), len(a.Relays))
	}
	b := []byte{Version}
	b = append(b, a.Key...)
	b = append(b, byte(len(a.Interfaces)))
	for _, ifc := range a.Interfaces {
		var fams byte
		if ifc.V4 != nil {
			fams |= 1
		}
		if ifc.V6 != nil {
			fams |= 2
		}
		if fams == 0 {
			return nil, fmt.Errorf("%w: an interface with no endpoint", ErrInvalidFormat)
		}
		b = append(b, fams)
		for i, ep := range []*Endpoint{ifc.V4, ifc.V6} {
			if ep == nil {
				continue
			}
			var err error
			if b, err = ep.marshal(b, i == 1); err != nil {
				return nil, err
			}
		}
	}
	for _, list := range [][]Server{a.Brokers, a.Relays} {
		b = append(b, byte(len(list)))
		for _, s := range list {
			ip := s.Addr.Addr()
			if !ip.IsValid() || ip.Is4In6() || ip.Zone() != "" || s.Addr.Port() == 0 {
				return nil, fmt.Errorf("%w: server %v", ErrInvalidIP, s.Addr)
			}
			kind := byte(0)
			if ip.Is6() {
				kind |= 1
			}
			if s.TCP {
				kind |= 0x80
			}
			b = append(b, kind)
			b = append(b, ip.AsSlice()...)
			b = binary.BigEndian.AppendUint16(b, s.Addr.Port())
		}
	}
	sum := sha256.Sum256(b)
	return append(b[1:], sum[:checksumLen]...), nil // the version is in the prefix
}

func (ep *Endpoint) marshal(b []byte, v6 bool) ([]byte, error) {
	size := 4
	if v6 {
		size = 16
	}
	check := func(a netip.Addr) bool {
		return a.IsValid() && a.BitLen() == size*8 && a.Zone() == "" && !a.Is4In6()
	}
	if ep.Port == 0 {
		return nil, ErrInvalidPort
	}
	if !check(ep.Internal) || (ep.External.IsValid() && !check(ep.External)) {
		return nil, fmt.Errorf("%w: %v / %v", ErrInvalidIP, ep.External, ep.Internal)
	}
	if ep.NAT.Mapping > stun.AddressPortDependent || ep.NAT.Filtering > stun.AddressPortDependent || ep.NAT.Ports > stun.DeltaRandom {
		return nil, fmt.Errorf("%w: NAT profile %+v", ErrInvalidFormat, ep.NAT)
	}
	var flags byte
	ext := ep.External
	if !ext.IsValid() {
		ext = netip.AddrFrom16([16]byte{})
		if !v6 {
			ext = netip.AddrFrom4([4]byte{})
		}
	} else {
		flags |= 2
	}
	if ep.Internal != ep.External {
		flags |= 1
	}
	if ep.ExternalPort != 0 && ep.ExternalPort != ep.Port {
		flags |= 4
	}
	b = append(b, flags)
	b = append(b, ext.AsSlice()...)
	if flags&1 != 0 {
		b = append(b, ep.Internal.AsSlice()...)
	}
	b = binary.BigEndian.AppendUint16(b, ep.Port)
	if flags&4 != 0 {
		b = binary.BigEndian.AppendUint16(b, ep.ExternalPort)
	}
	nat := byte(ep.NAT.Mapping)<<6 | byte(ep.NAT.Filtering)<<4 | byte(ep.NAT.Ports)<<1
	if ep.NAT.Translated {
		nat |= 1
	}
	return append(b, nat, byte(ep.NAT.Step)), nil
}

// Parse reads an address in its text or URI form.
func Parse(s string) (*Address, error) {
	s = strings.TrimSpace(s)
	if len(s) >= len(uriScheme) && strings.EqualFold(s[:len(uriScheme)], uriScheme) {
		s = s[len(uriScheme):]
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, strings.ToUpper(s))
	if !strings.HasPrefix(s, prefix) || len(s) == len(prefix) {
		return nil, ErrNotAddress
	}
	version, rest := s[len(prefix)], s[len(prefix)+1:]
	if version != '0'+Version {
		if version >= '0' && version <= '9' {
			return nil, fmt.Errorf("%w (version %c)", ErrVersion, version)
		}
		return nil, ErrNotAddress
	}
	body, err := b32.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrChecksum, err)
	}
	if len(body) < ed25519.PublicKeySize+1+checksumLen {
		return nil, ErrTruncated
	}
	payload, sum := body[:len(body)-checksumLen], body[len(body)-checksumLen:]
	want := sha256.Sum256(append([]byte{Version}, payload...))
	if !bytes.Equal(sum, want[:checksumLen]) {
		// A paste that lost its end reads as the start of a longer address.
		if _, err := unmarshal(body); errors.Is(err, ErrTruncated) {
			return nil, ErrTruncated
		}
		return nil, ErrChecksum
	}
	a, err := unmarshal(payload)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// reader consumes a payload, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = ErrTruncated
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) ip(v6 bool) netip.Addr {
	n := 4
	if v6 {
		n = 16
	}
	b := r.take(n)
	if b == nil {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (r *reader) port() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	p := binary.BigEndian.Uint16(b)
	if p == 0 && r.err == nil {
		r.err = ErrInvalidPort
	}
	return p
}

func unmarshal(payload []byte) (*Address, error) {
	r := &reader{b: payload}
	a := &Address{Key: ed25519.PublicKey(bytes.Clone(r.take(ed25519.PublicKeySize)))}
	n := int(r.byte())
	if r.err == nil && (n == 0 || n > MaxInterfaces) {
		return nil, fmt.Errorf("%w (%d interfaces)", ErrTooMany, n)
	}
	for range n {
		fams := r.byte()
		if r.err == nil && (fams == 0 || fams > 3) {
			return nil, fmt.Errorf("%w: interface families %#x", ErrInvalidFormat, fams)
		}
		var ifc Interface
		if fams&1 != 0 {
			ifc.V4 = r.endpoint(false)
		}
		if fams&2 != 0 {
			ifc.V6 = r.endpoint(true)
		}
		a.Interfaces = append(a.Interfaces, ifc)
	}
	for _, list := range []*[]Server{&a.Brokers, &a.Relays} {
		n := int(r.byte())
		if r.err == nil && n > MaxServers {
			return nil, fmt.Errorf("%w (%d servers)", ErrTooMany, n)
		}
		for range n {
			kind := r.byte()
			if r.err == nil && kind&^0x81 != 0 {
				return nil, fmt.Errorf("%w: server kind %#x", ErrInvalidFormat, kind)
			}
			ip := r.ip(kind&1 != 0)
			port := r.port()
			if r.err == nil && (ip.IsUnspecified() || ip.Is4In6()) {
				return nil, fmt.Errorf("%w: server %v", ErrInvalidIP, ip)
			}
			*list = append(*list, Server{Addr: netip.AddrPortFrom(ip, port), TCP: kind&0x80 != 0})
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) > 0 {
		return nil, ErrTooLong
	}
	return a, nil
}

func (r *reader) endpoint(v6 bool) *Endpoint {
	flags := r.byte()
	if r.err == nil && flags&^7 != 0 {
		r.err = fmt.Errorf("%w: endpoint flags %#x", ErrInvalidFormat, flags)
	}
	ep := &Endpoint{}
	ext := r.ip(v6)
	ep.Internal = ext
	if flags&2 != 0 {
		ep.External = ext
	} else if r.err == nil && !ext.IsUnspecified() {
		r.err = fmt.Errorf("%w: an unknown external address that is not zero", ErrInvalidFormat)
	}
	if flags&1 != 0 {
		ep.Internal = r.ip(v6)
		if r.err == nil && ep.Internal == ep.External {
			r.err = fmt.Errorf("%w: an internal address repeated", ErrInvalidFormat)
		}
	} else if r.err == nil && flags&2 == 0 {
		r.err = fmt.Errorf("%w: an endpoint with no address", ErrInvalidFormat)
	}
	if r.err == nil && (ep.Internal.IsUnspecified() || (v6 && ep.Internal.Is4In6())) {
		r.err = fmt.Errorf("%w: %v", ErrInvalidIP, ep.Internal)
	}
	ep.Port = r.port()
	if flags&4 != 0 {
		ep.ExternalPort = r.port()
		if r.err == nil && ep.ExternalPort == ep.Port {
			r.err = fmt.Errorf("%w: an external port repeated", ErrInvalidFormat)
		}
	}
	nat, step := r.byte(), r.byte()
	ep.NAT = NATProfile{
		Translated: nat&1 != 0,
		Mapping:    stun.Behaviour(nat >> 6),
		Filtering:  stun.Behaviour(nat >> 4 & 3),
		Ports:      stun.Delta(nat >> 1 & 7),
		Step:       int8(step),
	}
	if r.err == nil && ep.NAT.Ports > stun.DeltaRandom {
		r.err = fmt.Errorf("%w: port pattern %d", ErrInvalidFormat, ep.NAT.Ports)
	}
	return ep
}
