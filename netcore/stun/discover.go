package stun

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/netif"
)

const (
	// minFilterWait is the least time to wait for answers a filtering NAT
	// may drop. The verdict "filtered" is the absence of an answer, so the
	// wait must outlast the server's reply even on a quick path; 200 ms is
	// a few hundred lab round trips and covers a nearby server.
	minFilterWait = 200 * time.Millisecond
	// maxFilterWait caps it on slow paths (satellite links, congested Wi-Fi).
	maxFilterWait = 1500 * time.Millisecond
	// filterWaitRTTs scales the wait with the measured round trip, with
	// room for a retransmission.
	filterWaitRTTs = 5
	// primaryWait bounds the search for an RFC 5780 server among the
	// configured ones: past it, discovery goes on with what answered.
	primaryWait = 1500 * time.Millisecond
)

// Server is a STUN server to query.
type Server struct {
	Proto string         `json:"proto"` // "udp" or "tcp"
	Addr  netip.AddrPort `json:"addr"`
	Name  string         `json:"name"` // as configured
}

// ServerResult says whether a configured server answered, and how fast.
type ServerResult struct {
	Server string        `json:"server"`
	OK     bool          `json:"ok"`
	RTT    time.Duration `json:"rtt,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// Discovery is what Discover found from one local address.
type Discovery struct {
	Local   netip.Addr
	Profile *Profile
	Servers []ServerResult
}

// Resolve looks up the configured servers' addresses: one server per
// family a name resolves to. Servers that cannot be resolved are reported
// as failed results.
func Resolve(ctx context.Context, eps []config.Endpoint) ([]Server, []ServerResult) {
	found := make([][]Server, len(eps))
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() {
			ips, err := lookup(ctx, ep.Host)
			if err != nil {
				errs[i] = err
				return
			}
			for _, f := range netif.Families {
				if j := slices.IndexFunc(ips, func(ip netip.Addr) bool { return netif.FamilyOf(ip) == f }); j >= 0 {
					found[i] = append(found[i], Server{Proto: ep.Proto, Addr: netip.AddrPortFrom(ips[j], ep.Port), Name: ep.String()})
				}
			}
		})
	}
	wg.Wait()
	var out []Server
	var failed []ServerResult
	for i := range eps {
		if errs[i] != nil {
			failed = append(failed, ServerResult{Server: eps[i].String(), Error: errs[i].Error()})
		}
		out = append(out, found[i]...)
	}
	return out, failed
}

// dnsTimeout bounds a server name lookup: a resolver silent for 2 s is
// broken for an interactive check.
const dnsTimeout = 2 * time.Second

func lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// ofFamily returns the servers of a protocol reachable from a family.
func ofFamily(servers []Server, proto string, f netif.Family) []Server {
	var out []Server
	for _, s := range servers {
		if s.Proto == proto && netif.FamilyOf(s.Addr.Addr()) == f {
			out = append(out, s)
		}
	}
	return out
}

// External returns the external address of a UDP socket on local, asking
// the servers in parallel and taking the first answer.
func External(ctx context.Context, local netip.Addr, servers []Server) (Binding, error) {
	udp := ofFamily(servers, "udp", netif.FamilyOf(local))
	if len(udp) == 0 {
		return Binding{}, fmt.Errorf("no %v STUN server configured", netif.FamilyOf(local))
	}
	c, err := Listen(ctx, netip.AddrPortFrom(local, 0))
	if err != nil {
		return Binding{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(udp))
	for _, s := range udp {
		go func() {
			b, err := c.Bind(ctx, s.Addr, ChangeNone, netip.AddrPort{})
			results <- result{s, b, err}
		}()
	}
	var errs []error
	for range udp {
		r := <-results
		if r.err == nil {
			return r.b, nil
		}
		errs = append(errs, r.err)
	}
	return Binding{}, errors.Join(errs...)
}

// Prober returns a netif.Prober that learns external addresses from servers.
func Prober(servers []Server) netif.Prober {
	return func(ctx context.Context, local netip.Addr) (netip.Addr, error) {
		b, err := External(ctx, local, servers)
		return b.Mapped.Addr(), err
	}
}

type result struct {
	s   Server
	b   Binding
	err error
}

// Discover profiles the NAT between local and the internet with the
// servers of local's family (RFC 5780 behaviour discovery, hairpinning,
// port allocation over UDP and TCP). It returns the profile and how each
// server fared. Discovery ends within ctx's deadline; what could not be
// measured by then stays unknown.
func Discover(ctx context.Context, local netip.Addr, servers []Server) (*Profile, []ServerResult, error) {
	fam := netif.FamilyOf(local)
	udp, tcp := ofFamily(servers, "udp", fam), ofFamily(servers, "tcp", fam)
	if len(udp)+len(tcp) == 0 {
		return nil, nil, fmt.Errorf("%w for %v", ErrNoServer, fam)
	}
	d := &discovery{local: local, prof: &Profile{Local: local}}
	defer d.close()

	// Test I against every UDP server from one socket: the first answer
	// carrying OTHER-ADDRESS names the primary server; the rest only
	// show which servers work.
	a, err := d.listen(ctx)
	if err != nil {
		return nil, nil, err
	}
	primary, rtt := d.findPrimary(ctx, a, udp)
	// An alternate address on the server's own IP cannot tell address-
	// dependent behaviour apart (RFC 5780 §4.1 needs two IPs).
	if primary.Other.IsValid() && primary.Other.Addr() == primary.Server.Addr() {
		primary.Other = netip.AddrPort{}
	}

	var wg sync.WaitGroup
	wait := min(max(minFilterWait, filterWaitRTTs*rtt), maxFilterWait)
	var (
		filtering Behaviour
		altSeen   bool // the alternate address answered: it exists and is reachable
	)
	if primary.Mapped.IsValid() {
		p := d.prof
		p.UDP = true
		p.Server, p.Other, p.External = primary.Server, primary.Other, primary.Mapped
		p.NAT = primary.Mapped != netip.AddrPortFrom(local, a.LocalAddr().Port())
		if primary.Other.IsValid() {
			wg.Go(func() { p.Mapping, altSeen = d.mapping(ctx, a, primary, wait) })
			wg.Go(func() { filtering = d.filtering(ctx, primary, wait) })
		} else if !p.NAT {
			p.Mapping = EndpointIndependent
		}
		wg.Go(func() { p.Hairpin = d.hairpin(ctx, a, primary, wait) })
	}
	var tcpPrimary Server
	var tcpWait time.Duration
	if len(tcp) > 0 {
		wg.Go(func() { tcpPrimary, tcpWait = d.tcpMapping(ctx, tcp, primary) })
	}
	wg.Wait()
	// Silence from the alternate address proves filtering only if that
	// address answers at all.
	if filtering == AddressPortDependent && !altSeen {
		filtering = Unknown
	}
	d.prof.Filtering = filtering

	// Port patterns last, one protocol at a time: a NAT that counts new
	// flows (sequential ports) would see the other tests' flows as noise.
	if primary.Mapped.IsValid() {
		d.prof.UDPPorts = portPattern(ctx, wait, udpSample(local, primary.Server))
	}
	if tcpPrimary.Addr.IsValid() {
		d.prof.TCPPorts = portPattern(ctx, tcpWait, tcpSample(local, tcpPrimary.Addr))
	}
	d.prof.Ignored = d.ignored()
	return d.prof, d.results(), nil
}

// ErrNoServer is returned by Discover when no server of the local address's
// family is available.
var ErrNoServer = errors.New("no STUN server available")

// discovery holds one run's sockets and server outcomes.
type discovery struct {
	local netip.Addr
	prof  *Profile

	mu    sync.Mutex
	conns []*Conn
	tried []Server
	res   map[string]ServerResult
}

func (d *discovery) listen(ctx context.Context) (*Conn, error) {
	c, err := Listen(ctx, netip.AddrPortFrom(d.local, 0))
	if err != nil {
		return nil, err
	}
	d.keep(c)
	return c, nil
}

func (d *discovery) keep(c *Conn) {
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
}

// quietTries is how many ports below the ephemeral range listenQuiet
// tries before it takes any port.
const quietTries = 8

// listenQuiet opens a socket on a random port below the systems'
// ephemeral ranges (Linux from 32768, Windows and macOS from 49152). An
// ephemeral port may have been an earlier mapping test's socket, one that
// sent to the alternate address: the NAT keeps that flow for minutes, so
// the alternate address's answer to a new socket on the same port passes
// as if the NAT filtered nothing. No STUN client sends to an alternate
// address from these ports (the sequential port test talks to the primary
// server only).
func (d *discovery) listenQuiet(ctx context.Context) (*Conn, error) {
	for range quietTries {
		port := uint16(seqPortLow + rand.IntN(seqPortHigh-seqPortLow))
		if c, err := Listen(ctx, netip.AddrPortFrom(d.local, port)); err == nil {
			d.keep(c)
			return c, nil
		}
	}
	return d.listen(ctx)
}

func (d *discovery) close() {
	for _, c := range d.conns {
		c.Close()
	}
}

func (d *discovery) ignored() int64 {
	var n int64
	for _, c := range d.conns {
		n += c.Ignored()
	}
	return n
}

func (d *discovery) record(s Server, b Binding, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.res == nil {
		d.res = map[string]ServerResult{}
	}
	r := ServerResult{Server: s.Name, OK: err == nil, RTT: b.RTT}
	if err != nil {
		r.Error = err.Error()
	}
	if old, ok := d.res[s.Name]; !ok || !old.OK {
		d.res[s.Name] = r
	}
}

// results lists every server tried; those still unanswered count as failed.
func (d *discovery) results() []ServerResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ServerResult
	for _, s := range d.tried {
		r, ok := d.res[s.Name]
		if !ok {
			r = ServerResult{Server: s.Name, Error: "no answer before discovery ended"}
		}
		if !slices.ContainsFunc(out, func(o ServerResult) bool { return o.Server == r.Server }) {
			out = append(out, r)
		}
	}
	return out
}

// ask sends bind to every server at once, records how each fared, and
// delivers the results as they come; the transactions run until ctx ends.
func (d *discovery) ask(ctx context.Context, servers []Server, bind func(context.Context, Server) (Binding, error)) <-chan result {
	d.mu.Lock()
	d.tried = append(d.tried, servers...)
	d.mu.Unlock()
	results := make(chan result, len(servers))
	for _, s := range servers {
		go func() {
			b, err := bind(ctx, s)
			d.record(s, b, err)
			results <- result{s, b, err}
		}()
	}
	return results
}

// firstAnswer waits up to primaryWait for the first result that ok
// accepts, among n.
func firstAnswer(ctx context.Context, results <-chan result, n int, ok func(result) bool) (result, bool) {
	wait, cancel := context.WithTimeout(ctx, primaryWait)
	defer cancel()
	for range n {
		select {
		case r := <-results:
			if r.err == nil && ok(r) {
				return r, true
			}
		case <-wait.Done():
			return result{}, false
		}
	}
	return result{}, false
}

// findPrimary sends test I to every server and returns the first answer
// with an OTHER-ADDRESS, else the first answer, and its round trip.
func (d *discovery) findPrimary(ctx context.Context, a *Conn, servers []Server) (Binding, time.Duration) {
	results := d.ask(ctx, servers, func(ctx context.Context, s Server) (Binding, error) {
		return a.Bind(ctx, s.Addr, ChangeNone, netip.AddrPort{})
	})
	var first Binding
	r, _ := firstAnswer(ctx, results, len(servers), func(r result) bool {
		if !first.Mapped.IsValid() {
			first = r.b
		}
		return r.b.Other.IsValid()
	})
	if r.b.Mapped.IsValid() {
		return r.b, r.b.RTT
	}
	return first, first.RTT
}

// mapping runs RFC 5780 §4.3: the same socket asks the alternate address
// with the primary port (test II), then the alternate address and port
// (test III). Both go out at once to save a round trip; each gets wait. It
// also reports whether the alternate address answered at all.
func (d *discovery) mapping(ctx context.Context, a *Conn, primary Binding, wait time.Duration) (Behaviour, bool) {
	alt := netip.AddrPortFrom(primary.Other.Addr(), primary.Server.Port())
	var b2, b3 Binding
	var e2, e3 error
	var wg sync.WaitGroup
	bind := func(to netip.AddrPort) (Binding, error) {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return a.Bind(ctx, to, ChangeNone, netip.AddrPort{})
	}
	wg.Go(func() { b2, e2 = bind(alt) })
	wg.Go(func() { b3, e3 = bind(primary.Other) })
	wg.Wait()
	// A wait holds two sends: on a lossy or busy path both can go
	// unanswered, and an unknown mapping costs every punching strategy
	// its plan. One more round for a test that went unanswered (only
	// test III when test II says it matters).
	if e2 != nil && ctx.Err() == nil {
		b2, e2 = bind(alt)
	}
	if e3 != nil && (e2 != nil || b2.Mapped != primary.Mapped) && ctx.Err() == nil {
		b3, e3 = bind(primary.Other)
	}
	seen := e2 == nil || e3 == nil
	switch {
	case e2 != nil:
		return Unknown, seen
	case b2.Mapped == primary.Mapped:
		return EndpointIndependent, seen
	case e3 != nil:
		return Unknown, seen
	case b3.Mapped == b2.Mapped:
		return AddressDependent, seen
	}
	return AddressPortDependent, seen
}

// filtering runs RFC 5780 §4.4 on two fresh sockets at once, on ports
// that have only ever talked to the primary address (listenQuiet): one asks for the answer from the
// alternate address and port (passes endpoint-independent filtering), the
// other from the alternate port only (passes address-dependent filtering).
// A server seen to ignore or refuse the change makes the answer unknown.
func (d *discovery) filtering(ctx context.Context, primary Binding, wait time.Duration) Behaviour {
	var ok, opened, ignored [2]bool
	var wg sync.WaitGroup
	for i, change := range []Change{ChangeIP | ChangePort, ChangePort} {
		wg.Go(func() {
			c, err := d.listenQuiet(ctx)
			if err != nil {
				return
			}
			octx, cancel := context.WithTimeout(ctx, wait)
			_, err = c.Bind(octx, primary.Server, ChangeNone, netip.AddrPort{})
			cancel()
			if err != nil {
				return
			}
			opened[i] = true
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			_, err = c.Bind(wctx, primary.Server, change, primary.Other)
			var refused *RefusedError
			ok[i] = err == nil
			ignored[i] = errors.Is(err, ErrChangeIgnored) || errors.As(err, &refused)
		})
	}
	wg.Wait()
	switch {
	case ok[0]:
		return EndpointIndependent
	case ok[1]:
		return AddressDependent
	case ignored[0] || ignored[1]:
		return Unknown
	case opened[0] && opened[1] && ctx.Err() == nil:
		return AddressPortDependent
	}
	return Unknown
}

// hairpinSends is how many times the hairpin request goes out within its
// wait: one lost datagram must not read as "no".
const hairpinSends = 3

// hairpin sends a request from a second socket to the first socket's
// external address: it arrives only if the NAT loops it back (RFC 5780 §4.5).
func (d *discovery) hairpin(ctx context.Context, a *Conn, primary Binding, wait time.Duration) Tri {
	b, err := d.listen(ctx)
	if err != nil {
		return 0
	}
	ids := map[txID]bool{}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	resend := time.NewTicker(wait / hairpinSends)
	defer resend.Stop()
	send := func() {
		if id, err := b.sendRequest(ctx, primary.Mapped); err == nil {
			ids[id] = true
		}
	}
	send()
	for {
		select {
		case got := <-a.requests:
			if ids[got] {
				return Yes
			}
		case <-resend.C:
			send()
		case <-deadline.C:
			return No
		case <-ctx.Done():
			return 0
		}
	}
}

// tcpMapping finds the first TCP server to answer and, when it is the UDP
// primary's host (so its alternate address is known), repeats the mapping
// tests over TCP from one local port. It returns the server and the wait
// its answers deserve (from its round trip, a handshake and an exchange).
func (d *discovery) tcpMapping(ctx context.Context, servers []Server, primary Binding) (Server, time.Duration) {
	results := d.ask(ctx, servers, func(ctx context.Context, s Server) (Binding, error) {
		return BindTCP(ctx, netip.AddrPortFrom(d.local, 0), s.Addr)
	})
	r, ok := firstAnswer(ctx, results, len(servers), func(result) bool { return true })
	if !ok {
		return Server{}, 0
	}
	first := r.s
	wait := min(max(minFilterWait, filterWaitRTTs*r.b.RTT), maxFilterWait)
	p := d.prof
	p.TCP, p.TCPExternal = true, r.b.Mapped
	if !p.UDP {
		// UDP is blocked: TCP alone says whether the address is translated.
		p.NAT = r.b.Mapped.Addr() != d.local
	}
	if !primary.Other.IsValid() || first.Addr.Addr() != primary.Server.Addr() {
		return first, wait
	}
	bind := func(from, to netip.AddrPort) (Binding, error) {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return BindTCP(ctx, from, to)
	}
	// Three connections from one local port, to the primary and alternate
	// addresses, as in the UDP test.
	b1, err := bind(netip.AddrPortFrom(d.local, 0), first.Addr)
	if err != nil {
		return first, wait
	}
	from := b1.Local
	b2, err := bind(from, netip.AddrPortFrom(primary.Other.Addr(), first.Addr.Port()))
	if err != nil {
		return first, wait
	}
	if b2.Mapped == b1.Mapped {
		p.TCPMapping = EndpointIndependent
		return first, wait
	}
	b3, err := bind(from, primary.Other)
	switch {
	case err != nil:
	case b3.Mapped == b2.Mapped:
		p.TCPMapping = AddressDependent
	default:
		p.TCPMapping = AddressPortDependent
	}
	return first, wait
}
