// Package stun learns a host's external addresses and what its NAT does,
// with STUN Binding requests (RFC 8489) over UDP and TCP, IPv4 and IPv6.
//
// [Discover] profiles a NAT the way RFC 5780 describes: its mapping
// behaviour (endpoint-independent, address-dependent or address-and-port-
// dependent), its filtering behaviour (the same three), whether it hairpins,
// and how it allocates external ports (the seed library's "delta": equal,
// preserving, independent +n, dependent +n, random), which hole punching
// uses to predict the next mapping. The seed's NAT type names (open, full
// cone, restricted, port restricted, symmetric, blocked) are derived from
// the profile as a human label.
//
// Replies are trusted only when whole and ours: matched by transaction id,
// coming from the address the request asked for, with a valid fingerprint
// and a usable mapped address. Anything else is ignored and counted, so a
// spoofed or stray packet can never turn into a verdict.
package stun

import (
	"fmt"
	"net/netip"
)

// Behaviour is a NAT's mapping or filtering behaviour (RFC 4787).
type Behaviour uint8

// Behaviours; Unknown when the tests could not tell (no RFC 5780 server,
// no answers).
const (
	Unknown Behaviour = iota
	EndpointIndependent
	AddressDependent
	AddressPortDependent
)

var behaviourNames = [...]string{"unknown", "endpoint-independent", "address-dependent", "address-and-port-dependent"}

// String names the behaviour in RFC 4787's words.
func (b Behaviour) String() string {
	if int(b) < len(behaviourNames) {
		return behaviourNames[b]
	}
	return fmt.Sprintf("Behaviour(%d)", uint8(b))
}

// MarshalText encodes the behaviour as its name.
func (b Behaviour) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// Short returns the RFC 4787 abbreviation with the given suffix ("M" for
// mapping, "F" for filtering): "EIM", "APDF"; "?" when unknown.
func (b Behaviour) Short(suffix string) string {
	switch b {
	case EndpointIndependent:
		return "EI" + suffix
	case AddressDependent:
		return "AD" + suffix
	case AddressPortDependent:
		return "APD" + suffix
	}
	return "?"
}

// Tri is a yes/no answer that may not be known.
type Tri uint8

// Tri values.
const (
	No Tri = iota + 1
	Yes
)

// String returns "yes", "no" or "unknown".
func (t Tri) String() string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

// MarshalText encodes the answer as "yes", "no" or "unknown".
func (t Tri) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Delta is a port allocation pattern: how the external port of a new
// mapping relates to its local port and to the previous mapping.
type Delta uint8

// Port allocation patterns, as in the seed library.
const (
	DeltaUnknown Delta = iota
	// DeltaEqual: the external port is the local port.
	DeltaEqual
	// DeltaPreserving: external ports keep the local ports' distances.
	DeltaPreserving
	// DeltaIndependent: each new mapping is the previous external port +n,
	// whatever the local port.
	DeltaIndependent
	// DeltaDependent: external ports step by n when local ports step by 1.
	DeltaDependent
	// DeltaRandom: no pattern; the next mapping cannot be predicted.
	DeltaRandom
)

var deltaNames = [...]string{"unknown", "equal", "preserving", "independent", "dependent", "random"}

// String names the pattern.
func (d Delta) String() string {
	if int(d) < len(deltaNames) {
		return deltaNames[d]
	}
	return fmt.Sprintf("Delta(%d)", uint8(d))
}

// MarshalText encodes the pattern as its name.
func (d Delta) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// PortPattern is the measured port allocation of new mappings.
type PortPattern struct {
	Kind Delta `json:"kind"`
	// Step is n for the +n patterns.
	Step int `json:"step,omitempty"`
	// Samples are the (local, external) port pairs measured, in order.
	Samples [][2]uint16 `json:"samples,omitempty"`
}

// Predictable reports whether the next mapping's port can be predicted.
func (p PortPattern) Predictable() bool {
	return p.Kind >= DeltaEqual && p.Kind <= DeltaDependent
}

// String describes the pattern, e.g. "independent +1".
func (p PortPattern) String() string {
	if p.Kind == DeltaIndependent || p.Kind == DeltaDependent {
		return fmt.Sprintf("%v %+d", p.Kind, p.Step)
	}
	return p.Kind.String()
}

// Profile is what discovery learned about one local address's path to the
// internet.
type Profile struct {
	Local netip.Addr `json:"local"`
	// Server is the STUN server the behaviour tests used (one with an
	// alternate address), and Other its OTHER-ADDRESS.
	Server netip.AddrPort `json:"server"`
	Other  netip.AddrPort `json:"other,omitzero"`
	// External is the external address of a UDP socket, as the server saw it.
	External netip.AddrPort `json:"external"`
	// NAT reports whether the address is translated at all.
	NAT       bool      `json:"nat"`
	Mapping   Behaviour `json:"mapping"`
	Filtering Behaviour `json:"filtering"`
	Hairpin   Tri       `json:"hairpin"`
	// UDPPorts and TCPPorts describe the port allocation of new mappings.
	UDPPorts PortPattern `json:"udp_ports"`
	TCPPorts PortPattern `json:"tcp_ports"`
	// TCPMapping is the mapping behaviour seen over TCP.
	TCPMapping Behaviour `json:"tcp_mapping"`
	// TCPExternal is the external address of a TCP connection.
	TCPExternal netip.AddrPort `json:"tcp_external,omitzero"`
	// UDP and TCP say whether STUN answered over each protocol at all.
	UDP bool `json:"udp"`
	TCP bool `json:"tcp"`
	// Ignored counts replies that were not believed.
	Ignored int64 `json:"ignored,omitempty"`
}

// PreservesPorts reports whether the NAT keeps a socket's local port as
// its external port.
func (p *Profile) PreservesPorts() bool { return p.UDPPorts.Kind == DeltaEqual }

// NATType is the seed library's name for a NAT, derived from a profile as
// a label for people.
type NATType uint8

// NAT types, from easiest to hardest to reach.
const (
	TypeUnknown NATType = iota
	TypeOpen
	TypeFirewall // no translation, but a firewall filters inbound traffic
	TypeFullCone
	TypeRestricted
	TypePortRestricted
	TypeSymmetric
	TypeBlocked    // no STUN server answered
	TypeUDPBlocked // only TCP gets out
)

var typeNames = [...]string{"unknown", "open internet", "firewall", "full cone", "restricted cone", "port restricted cone", "symmetric", "blocked", "UDP blocked"}

// String names the type.
func (t NATType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("NATType(%d)", uint8(t))
}

// MarshalText encodes the type as its name.
func (t NATType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Type derives the seed's NAT type from the profile.
func (p *Profile) Type() NATType {
	switch {
	case !p.UDP && !p.TCP:
		return TypeBlocked
	case !p.UDP:
		return TypeUDPBlocked
	case !p.NAT && p.Filtering == EndpointIndependent:
		return TypeOpen
	case !p.NAT && (p.Filtering == AddressDependent || p.Filtering == AddressPortDependent):
		return TypeFirewall
	case !p.NAT:
		return TypeUnknown // no translation, filtering not measured
	case p.Mapping == AddressDependent || p.Mapping == AddressPortDependent:
		return TypeSymmetric
	case p.Mapping != EndpointIndependent:
		return TypeUnknown
	}
	switch p.Filtering {
	case EndpointIndependent:
		return TypeFullCone
	case AddressDependent:
		return TypeRestricted
	case AddressPortDependent:
		return TypePortRestricted
	}
	return TypeUnknown
}

// UnmarshalText decodes a behaviour's name.
func (b *Behaviour) UnmarshalText(t []byte) error { return unmarshalName(behaviourNames[:], b, t) }

// UnmarshalText decodes "yes", "no" or "unknown".
func (t *Tri) UnmarshalText(b []byte) error {
	switch string(b) {
	case "yes":
		*t = Yes
	case "no":
		*t = No
	case "unknown":
		*t = 0
	default:
		return fmt.Errorf("unknown answer %q", b)
	}
	return nil
}

// UnmarshalText decodes a pattern's name.
func (d *Delta) UnmarshalText(t []byte) error { return unmarshalName(deltaNames[:], d, t) }

// UnmarshalText decodes a type's name.
func (n *NATType) UnmarshalText(t []byte) error { return unmarshalName(typeNames[:], n, t) }

func unmarshalName[T ~uint8](names []string, v *T, t []byte) error {
	for i, n := range names {
		if n == string(t) {
			*v = T(i)
			return nil
		}
	}
	return fmt.Errorf("unknown name %q", t)
}
