package stun

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/stun"
)

// Change asks an RFC 5780 server to answer from its other address or port
// (the CHANGE-REQUEST attribute), so filtering can be observed.
type Change uint8

// CHANGE-REQUEST flags (RFC 5780 §7.2).
const (
	ChangeNone Change = 0
	ChangePort Change = 0x02
	ChangeIP   Change = 0x04
)

// txID is a STUN transaction id.
type txID = [stun.TransactionIDSize]byte

func newTxID() txID {
	var id txID
	rand.Read(id[:])
	return id
}

// request builds a Binding request with a FINGERPRINT, and a
// CHANGE-REQUEST if change asks for one.
func request(id txID, change Change) ([]byte, error) {
	setters := []stun.Setter{stun.NewTransactionIDSetter(id), stun.BindingRequest}
	if change != ChangeNone {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 0, byte(change)}})
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return nil, err
	}
	return m.Raw, nil
}

// RefusedError is a server's well-formed Binding error response.
type RefusedError struct {
	Code   int
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Code == 0 {
		return "server refused the request"
	}
	return fmt.Sprintf("server refused the request: %d %s", e.Code, e.Reason)
}

// answer is a decoded Binding success response.
type answer struct {
	mapped netip.AddrPort // XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from old servers
	other  netip.AddrPort // OTHER-ADDRESS: zero if the server does not do RFC 5780
	origin netip.AddrPort // RESPONSE-ORIGIN, as the server claims it
}

// Reasons a reply is not trusted.
var (
	errNotSTUN     = errors.New("not a STUN message")
	errWrongTx     = errors.New("transaction id matches no request")
	errNoMapped    = errors.New("response carries no mapped address")
	errBadAddress  = errors.New("mapped address is not a usable IP and port")
	errFingerprint = errors.New("FINGERPRINT does not match the message")
)

// kind classifies a raw STUN message by its header only.
func kind(b []byte) (typ stun.MessageType, id txID, ok bool) {
	if !stun.IsMessage(b) {
		return typ, id, false
	}
	typ.ReadValue(binary.BigEndian.Uint16(b[0:2]))
	copy(id[:], b[8:20])
	return typ, id, true
}

// parseResponse decodes b as the Binding success response to transaction
// want. Anything else — another transaction, an error response, a broken or
// truncated attribute, a bad fingerprint, a missing or unusable mapped
// address — is an error: a reply is believed only if it is whole and ours.
func parseResponse(b []byte, want txID) (answer, error) {
	var a answer
	if !stun.IsMessage(b) {
		return a, errNotSTUN
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return a, fmt.Errorf("malformed STUN message: %w", err)
	}
	if m.TransactionID != want {
		return a, errWrongTx
	}
	if m.Type == stun.BindingError {
		var code stun.ErrorCodeAttribute
		if code.GetFrom(m) == nil {
			return a, &RefusedError{Code: int(code.Code), Reason: string(code.Reason)}
		}
		return a, &RefusedError{}
	}
	if m.Type != stun.BindingSuccess {
		return a, fmt.Errorf("unexpected STUN message %v", m.Type)
	}
	if m.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(m); err != nil {
			return a, errFingerprint
		}
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err == nil {
		a.mapped = addrPort(xor.IP, xor.Port)
	} else {
		var plain stun.MappedAddress
		if err := plain.GetFrom(m); err != nil {
			return a, errNoMapped
		}
		a.mapped = addrPort(plain.IP, plain.Port)
	}
	if !usable(a.mapped) {
		return a, errBadAddress
	}
	var other stun.OtherAddress
	if other.GetFrom(m) == nil {
		if ap := addrPort(other.IP, other.Port); usable(ap) {
			a.other = ap
		}
	}
	var origin stun.ResponseOrigin
	if origin.GetFrom(m) == nil {
		a.origin = addrPort(origin.IP, origin.Port)
	}
	return a, nil
}

func addrPort(ip net.IP, port int) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 0xffff {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

func usable(ap netip.AddrPort) bool {
	a := ap.Addr()
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && ap.Port() != 0
}
