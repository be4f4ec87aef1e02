package pipe

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Sub is a subscription: it selects messages whose content matches a regular
// expression (anywhere in the message, as the seed's find-all did; anchor
// with ^ and $ to match the whole message) and whose sender matches an
// address pattern. The zero Sub, also [SubAll], selects every message.
//
// Each subscription made with [Pipe.Subscribe] has its own bounded queue,
// read with [Pipe.Recv]; a message is copied to every matching queue.
type Sub struct {
	msg    *regexp.Regexp // nil matches any message
	from   AddrPattern
	fromRe *regexp.Regexp // if set, matched against the sender's "ip:port" instead
	key    string
}

// SubAll selects every message from every sender.
var SubAll = Sub{}

// NewSub builds a subscription from a message regular expression ("" for
// any message) and a sender address pattern ("" for any sender; see
// [ParseAddrPattern]).
func NewSub(msgRegexp, from string) (Sub, error) {
	var s Sub
	if msgRegexp != "" {
		re, err := regexp.Compile(msgRegexp)
		if err != nil {
			return Sub{}, fmt.Errorf("invalid message pattern %q: %w", msgRegexp, err)
		}
		s.msg = re
	}
	ap, err := ParseAddrPattern(from)
	if err != nil {
		return Sub{}, err
	}
	if s.msg == nil && ap == (AddrPattern{}) {
		return SubAll, nil // the same subscription, the same queue
	}
	s.from = ap
	s.key = msgRegexp + "\x00" + ap.String()
	return s, nil
}

// NewSubRegexp builds a subscription the seed library's way: a message
// regular expression and a sender regular expression, matched anywhere in
// the sender's "ip:port" (no brackets around IPv6 addresses, as the seed
// writes them); "" for either matches everything.
func NewSubRegexp(msgRegexp, fromRegexp string) (Sub, error) {
	if fromRegexp == "" {
		return NewSub(msgRegexp, "")
	}
	s, err := NewSub(msgRegexp, "")
	if err != nil {
		return Sub{}, err
	}
	if s.fromRe, err = regexp.Compile(fromRegexp); err != nil {
		return Sub{}, fmt.Errorf("invalid sender pattern %q: %w", fromRegexp, err)
	}
	s.key = msgRegexp + "\x00re:" + fromRegexp
	return s, nil
}

// MustSub is like [NewSub] but panics on a bad pattern; for patterns fixed
// in the program's source.
func MustSub(msgRegexp, from string) Sub {
	s, err := NewSub(msgRegexp, from)
	if err != nil {
		panic(err)
	}
	return s
}

// Match reports whether a message from sender is selected by s.
func (s Sub) Match(msg []byte, from netip.AddrPort) bool {
	if s.fromRe != nil {
		if !s.fromRe.MatchString(from.Addr().Unmap().WithZone("").String() + ":" + strconv.Itoa(int(from.Port()))) {
			return false
		}
	} else if !s.from.Match(from) {
		return false
	}
	return s.msg == nil || s.msg.Match(msg)
}

// id identifies equal subscriptions; the zero Sub and SubAll share one.
func (s Sub) id() string {
	if s.key == "" {
		return "\x00*"
	}
	return s.key
}

// String describes the subscription, e.g. `/^PONG/ from 10.0.0.1:*`.
func (s Sub) String() string {
	m := "any message"
	if s.msg != nil {
		m = "/" + s.msg.String() + "/"
	}
	if s.fromRe != nil {
		return m + " from /" + s.fromRe.String() + "/"
	}
	return m + " from " + s.from.String()
}

// AddrPattern matches sender addresses: an IP address or prefix (any if
// unset) and a port (any if 0). IPv4-mapped IPv6 senders match as IPv4 and
// zones are ignored.
type AddrPattern struct {
	Prefix netip.Prefix // invalid (zero) matches every address
	Port   uint16       // 0 matches every port
}

// ParseAddrPattern parses a sender pattern:
//
//	""  "*"  "*:*"          any sender
//	"10.0.0.1"              that address, any port
//	"10.0.0.1:5000"         that address and port ("10.0.0.1:0" or ":*": any port)
//	"[fe80::1%eth0]:5000"   IPv6 in brackets when a port follows
//	"10.0.0.0/8"            any address in the prefix
//	"*:5000"                any address, that port
func ParseAddrPattern(s string) (AddrPattern, error) {
	var ap AddrPattern
	if s == "" || s == "*" || s == "*:*" {
		return ap, nil
	}
	host, port := s, ""
	if h, p, ok := cutPort(s); ok {
		host, port = h, p
	}
	bad := func(why string) (AddrPattern, error) {
		return AddrPattern{}, fmt.Errorf("invalid sender pattern %q: %s", s, why)
	}
	if port != "" && port != "*" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return bad("port must be a number from 0 to 65535 or *")
		}
		ap.Port = uint16(n)
	}
	switch {
	case host == "*" || host == "":
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return bad("want an address prefix like 10.0.0.0/8")
		}
		ap.Prefix = unmapPrefix(p.Masked())
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return bad("want an IP address, a prefix or *")
		}
		a = a.Unmap().WithZone("")
		ap.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	return ap, nil
}

// cutPort splits "host:port", "[v6]:port" and "*:port"; a bare IPv6 address
// or prefix has no port.
func cutPort(s string) (host, port string, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return s, "", false
		}
		if rest := s[end+1:]; strings.HasPrefix(rest, ":") {
			return s[1:end], rest[1:], true
		}
		return s[1:end], "", true
	}
	if strings.Count(s, ":") != 1 {
		return s, "", false
	}
	h, p, _ := strings.Cut(s, ":")
	return h, p, true
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Match reports whether from fits the pattern.
func (ap AddrPattern) Match(from netip.AddrPort) bool {
	if ap.Port != 0 && ap.Port != from.Port() {
		return false
	}
	return !ap.Prefix.IsValid() || ap.Prefix.Contains(from.Addr().Unmap().WithZone(""))
}

// String formats the pattern in the syntax ParseAddrPattern reads.
func (ap AddrPattern) String() string {
	host := "*"
	if ap.Prefix.IsValid() {
		if ap.Prefix.IsSingleIP() {
			host = ap.Prefix.Addr().String()
			if ap.Prefix.Addr().Is6() {
				host = "[" + host + "]"
			}
		} else {
			host = ap.Prefix.String()
		}
	}
	port := "*"
	if ap.Port != 0 {
		port = strconv.Itoa(int(ap.Port))
	}
	return host + ":" + port
}
