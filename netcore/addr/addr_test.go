package addr

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"p2pd/netcore/stun"
)

func key(b byte) ed25519.PublicKey {
	k := make(ed25519.PublicKey, ed25519.PublicKeySize)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// typical is a dual-stack laptop behind a home router, with two brokers and
// a relay.
func typical() *Address {
	return &Address{
		Key: key(7),
		Interfaces: []Interface{{
			V4: &Endpoint{
				External: netip.MustParseAddr("198.51.100.2"), Internal: netip.MustParseAddr("192.168.1.20"), Port: 41234,
				NAT: NATProfile{Translated: true, Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent, Ports: stun.DeltaEqual},
			},
			V6: &Endpoint{
				External: netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"), Internal: netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"), Port: 41234,
				NAT: NATProfile{Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent, Ports: stun.DeltaEqual},
			},
		}},
		Brokers: []Server{{Addr: netip.MustParseAddrPort("203.0.113.1:1883")}, {Addr: netip.MustParseAddrPort("[2001:db8::1883]:1883")}},
		Relays:  []Server{{Addr: netip.MustParseAddrPort("203.0.113.1:3478")}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, a := range []*Address{
		typical(),
		{Key: key(4), Interfaces: []Interface{{V4: &Endpoint{External: netip.MustParseAddr("198.51.100.2"), Internal: netip.MustParseAddr("10.0.0.5"), Port: 4000, ExternalPort: 51000}}}},
		{Key: key(1), Interfaces: []Interface{{V4: &Endpoint{Internal: netip.MustParseAddr("10.0.0.5"), Port: 1,
			NAT: NATProfile{Translated: true, Mapping: stun.AddressPortDependent, Filtering: stun.AddressPortDependent, Ports: stun.DeltaIndependent, Step: -3}}}}},
		{Key: key(2), Interfaces: []Interface{{V6: &Endpoint{External: netip.MustParseAddr("fd00:a::2"), Internal: netip.MustParseAddr("fd00:a::2"), Port: 65535}},
			{V4: &Endpoint{External: netip.MustParseAddr("203.0.113.7"), Internal: netip.MustParseAddr("203.0.113.7"), Port: 80}}},
			Relays: []Server{{Addr: netip.MustParseAddrPort("[fd00:64::1]:3478"), TCP: true}}},
	} {
		text, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%s): %v", text, err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, a)
		}
		uri, _ := a.URI()
		if back, err := Parse(uri); err != nil || !reflect.DeepEqual(back, a) {
			t.Errorf("URI %s: %v", uri, err)
		}
		// Case, spaces and hyphens do not matter.
		sloppy := strings.ToLower(strings.ReplaceAll(text, "-", " "))
		if back, err := Parse(sloppy); err != nil || !reflect.DeepEqual(back, a) {
			t.Errorf("sloppy form %q: %v", sloppy, err)
		}
	}
}

// TestFitsQRVersion10: a dual-stack single-interface address fits a QR
// code of version 10 or lower at error correction M.
func TestFitsQRVersion10(t *testing.T) {
	text, err := typical().Encode()
	if err != nil {
		t.Fatal(err)
	}
	uri, _ := typical().URI()
	for _, s := range []string{text, strings.ToUpper(uri)} {
		q, err := qrcode.New(s, qrcode.Medium)
		if err != nil {
			t.Fatal(err)
		}
		if q.VersionNumber > 10 {
			t.Errorf("%d characters need QR version %d, want 10 or lower", len(s), q.VersionNumber)
		}
		t.Logf("%d characters: QR version %d (%s)", len(s), q.VersionNumber, s)
	}
}

// seal turns a raw payload into address text with a valid checksum, to
// build malformed addresses that only the structure check can reject.
func seal(version byte, payload []byte) string {
	sum := sha256.Sum256(append([]byte{version}, payload...))
	return "P2PD" + string('0'+version) + "-" + b32.EncodeToString(append(payload, sum[:checksumLen]...))
}

func TestParseErrors(t *testing.T) {
	good, _ := typical().Encode()
	body, _ := b32.DecodeString(strings.ReplaceAll(good[len("P2PD1-"):], "-", ""))
	payload := body[:len(body)-checksumLen]

	typo := []byte(good)
	i := len(typo) / 2
	if typo[i] == 'A' {
		typo[i] = 'B'
	} else {
		typo[i] = 'A'
	}

	keyAndCount := func(n byte) []byte { return append(append([]byte{}, key(3)...), n) }
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"typo", string(typo), ErrChecksum},
		{"not base32", good[:20] + "0189" + good[24:], ErrChecksum},
		{"cut short", good[:len(good)-12], ErrTruncated},
		{"unknown version", "P2PD7-" + good[6:], ErrVersion},
		{"not an address", "hello world", ErrNotAddress},
		{"empty", "", ErrNotAddress},
		{"structure cut short", seal(Version, payload[:len(payload)-5]), ErrTruncated},
		{"trailing bytes", seal(Version, append(append([]byte{}, payload...), 0)), ErrTooLong},
		{"too many interfaces", seal(Version, keyAndCount(5)), ErrTooMany},
		{"no interfaces", seal(Version, keyAndCount(0)), ErrTooMany},
		{"port 0", seal(Version, append(keyAndCount(1), 1, 2, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0)), ErrInvalidPort},
		{"unspecified address", seal(Version, append(keyAndCount(1), 1, 2, 0, 0, 0, 0, 0, 80, 0, 0, 0, 0)), ErrInvalidIP},
		{"reserved flag bits", seal(Version, append(keyAndCount(1), 1, 0x82, 10, 0, 0, 1, 0, 80, 0, 0, 0, 0)), ErrInvalidFormat},
		{"external port repeated", seal(Version, append(keyAndCount(1), 1, 6, 10, 0, 0, 1, 0, 80, 0, 80, 0, 0, 0, 0)), ErrInvalidFormat},
		{"too many brokers", seal(Version, append(keyAndCount(1), 1, 2, 10, 0, 0, 1, 0, 80, 0, 0, 5)), ErrTooMany},
	} {
		_, err := Parse(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Each error says something a person can act on.
	if !strings.Contains(ErrChecksum.Error(), "typo") || !strings.Contains(ErrVersion.Error(), "update") {
		t.Error("error texts lost their advice")
	}
}

func TestEncodeRefusesBadAddresses(t *testing.T) {
	for _, a := range []*Address{
		{Key: key(1)},
		{Key: key(1)[:31], Interfaces: typical().Interfaces},
		{Key: key(1), Interfaces: []Interface{{}}},
		{Key: key(1), Interfaces: []Interface{{V4: &Endpoint{Internal: netip.MustParseAddr("::1"), Port: 1}}}},
		{Key: key(1), Interfaces: []Interface{{V4: &Endpoint{Internal: netip.MustParseAddr("10.0.0.1")}}}},
		{Key: key(1), Interfaces: typical().Interfaces, Brokers: make([]Server, 5)},
	} {
		if s, err := a.Encode(); err == nil {
			t.Errorf("encoded %+v as %s", a, s)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _ := typical().Encode()
	f.Add(good)
	f.Add(strings.ToLower(good))
	f.Add("P2PD1-")
	f.Add(seal(Version, append(append([]byte{}, key(3)...), 1, 3)))
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		text, err := a.Encode()
		if err != nil {
			t.Fatalf("parsed %q but cannot encode it: %v", s, err)
		}
		b, err := Parse(text)
		if err != nil {
			t.Fatalf("encode(parse(%q)) = %q does not parse: %v", s, text, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the address:\n%+v\n%+v", a, b)
		}
		if again, _ := b.Encode(); again != text {
			t.Fatalf("encoding is not canonical: %q vs %q", text, again)
		}
	})
}
