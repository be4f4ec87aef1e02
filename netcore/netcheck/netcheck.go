// Package netcheck runs P2PD's network diagnostics and gathers them in
// one [Report]: per interface and family the external address and the
// NAT's behaviour (netcore/stun), whether the router forwards ports on
// request (netcore/portmap), the clock offset (netcore/clock), which
// configured servers answered and how fast, and a verdict in plain words.
// The CLI prints the report (`p2pd nat`); the REST API and the GUI show
// the same struct.
//
// Every check runs at once under one budget: a server that never answers
// costs its own timeout, not the report's.
package netcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"p2pd/netcore/clock"
	"p2pd/netcore/config"
	"p2pd/netcore/netif"
	"p2pd/netcore/portmap"
	"p2pd/netcore/relay"
	"p2pd/netcore/signal"
	"p2pd/netcore/stun"
)

// DefaultBudget bounds a whole report. Discovery needs about a quarter of
// a second plus a few round trips; the rest is room for slow servers'
// timeouts (STUN and MQTT give up after 1.5–2 s).
const DefaultBudget = 3 * time.Second

// Report is the outcome of the diagnostics.
type Report struct {
	Started     time.Time       `json:"started"`
	Took        time.Duration   `json:"took"`
	Interfaces  []Interface     `json:"interfaces"`
	PortMapping *PortMapping    `json:"port_mapping,omitempty"`
	Clock       *Clock          `json:"clock,omitempty"`
	Servers     []ServerOutcome `json:"servers"`
	// Verdict says in one sentence what the network means for connecting
	// to friends.
	Verdict string `json:"verdict"`
}

// Interface is one network interface's findings.
type Interface struct {
	Name     string        `json:"name"`
	Default  bool          `json:"default"`
	Families []Family      `json:"families"`
	Routes   []netif.Route `json:"routes"`
}

// Family is what discovery found for one address family of an interface.
type Family struct {
	Family  netif.Family   `json:"family"`
	Local   netip.Addr     `json:"local"`
	Profile *stun.Profile  `json:"profile,omitempty"`
	NATType stun.NATType   `json:"nat_type"`
	Error   string         `json:"error,omitempty"`
	Inbound bool           `json:"inbound"` // unsolicited peers can reach this address
	Ext     netip.AddrPort `json:"external,omitzero"`
	// Known says the profile came with Options.Known, not measured again.
	Known bool `json:"known,omitempty"`
}

func (f *Family) setProfile(p *stun.Profile) {
	f.Profile, f.NATType, f.Ext = p, p.Type(), p.External
	f.Inbound = p.Filtering == stun.EndpointIndependent
}

// PortMapping is what the router offered and whether a mapping worked.
type PortMapping struct {
	Gateway portmap.Gateway `json:"gateway"`
	// Tried says whether a test mapping was asked for (not when the router
	// speaks neither protocol, or there is no NAT to map through).
	Tried    bool           `json:"tried"`
	Worked   bool           `json:"worked"`
	Method   portmap.Method `json:"method,omitempty"`
	External netip.AddrPort `json:"external,omitzero"`
	Error    string         `json:"error,omitempty"`
}

// Clock is the clock offset measurement.
type Clock struct {
	Offset time.Duration `json:"offset"`
	Error  string        `json:"error,omitempty"`
}

// ServerOutcome says whether a configured server answered, and how fast.
type ServerOutcome struct {
	Kind   string        `json:"kind"` // "stun", "mqtt", "turn" or "ntp"
	Server string        `json:"server"`
	OK     bool          `json:"ok"`
	RTT    time.Duration `json:"rtt,omitempty"`
	Error  string        `json:"error,omitempty"`
	// TCPRelay says a TURN server that answered also relays TCP (RFC
	// 6062), which carries relayed transfers several times faster.
	TCPRelay bool `json:"tcpRelay,omitempty"`
	// NoUDP, for a TURN server that relays TCP, says why it relays no UDP
	// from here (a network that lets no UDP out, say): empty when it does.
	NoUDP string `json:"noUDP,omitempty"`
}

// Options tune Run.
type Options struct {
	// Budget bounds the report (DefaultBudget if zero).
	Budget time.Duration
	// Interfaces lists interfaces by name to profile; by default every
	// interface usable for WAN traffic.
	Interfaces []string
	// Known are NAT profiles measured moments ago (a node's, as it
	// started): a local address with one is not profiled again.
	Known []stun.Discovery
}

// Run gathers a report using the servers of cfg.
func Run(ctx context.Context, cfg config.Config, opt Options) *Report {
	r := &Report{Started: time.Now()}
	budget := opt.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []ServerOutcome
	)
	add := func(o ...ServerOutcome) {
		mu.Lock()
		out = append(out, o...)
		mu.Unlock()
	}

	// Servers other than STUN go first: their connections are done in a
	// few round trips, before discovery measures port allocation (a NAT
	// that numbers flows sees every other flow as noise).
	if eps, err := cfg.NTPEndpoints(); err == nil && len(eps) > 0 {
		wg.Go(func() {
			res, err := clock.Measure(ctx, eps)
			c := &Clock{Offset: res.Offset}
			if err != nil {
				c.Error = err.Error()
			}
			r.Clock = c
			for _, s := range res.Samples {
				add(ServerOutcome{Kind: "ntp", Server: s.Server, OK: s.Error == "", RTT: s.RTT, Error: s.Error})
			}
		})
	}
	if eps, err := cfg.MQTTEndpoints(); err == nil {
		for _, ep := range eps {
			wg.Go(func() {
				rtt, err := signal.CheckBroker(ctx, ep)
				add(outcome("mqtt", ep.String(), rtt, err))
			})
		}
	}
	for _, t := range cfg.TURN {
		wg.Go(func() {
			// Both at once: from a network that lets no UDP out, the UDP
			// allocation waits for its timeout, and TCP alone relays.
			var tcpRTT time.Duration
			var tcpErr error
			var both sync.WaitGroup
			both.Go(func() { tcpRTT, tcpErr = relay.CheckTCP(ctx, t) })
			rtt, _, err := relay.Check(ctx, t)
			both.Wait()
			o := outcome("turn", t.URL, rtt, err)
			if err != nil && tcpErr == nil {
				o = outcome("turn", t.URL, tcpRTT, nil)
				o.NoUDP = err.Error()
			}
			o.TCPRelay = tcpErr == nil
			add(o)
		})
	}

	ifs, err := netif.List(netif.Options{})
	if err != nil {
		r.Verdict = "Could not read this computer's network interfaces: " + err.Error()
		wg.Wait()
		r.Servers, r.Took = out, time.Since(r.Started)
		return r
	}
	stunEPs, _ := cfg.STUNEndpoints()
	servers, unresolved := stun.Resolve(ctx, stunEPs)
	for _, u := range unresolved {
		add(ServerOutcome{Kind: "stun", Server: u.Server, Error: u.Error})
	}

	var gw, gwLocal netip.Addr
	for _, ifc := range ifs {
		if !ifc.WAN || (len(opt.Interfaces) > 0 && !slices.Contains(opt.Interfaces, ifc.Name)) {
			continue
		}
		ir := Interface{Name: ifc.Name, Default: ifc.Default4 || ifc.Default6}
		if ifc.Default4 && !gw.IsValid() {
			gw = ifc.Gateway4
			if i := slices.IndexFunc(ifc.Routes, func(r netif.Route) bool { return r.Family == netif.IPv4 && len(r.NIC) > 0 }); i >= 0 {
				gwLocal = ifc.Routes[i].NIC[0]
			}
		}
		for _, route := range ifc.Routes {
			if len(route.NIC) == 0 {
				continue // link-local only: no internet on this family
			}
			ir.Families = append(ir.Families, Family{Family: route.Family, Local: route.NIC[0]})
		}
		r.Interfaces = append(r.Interfaces, ir)
	}
	// The router is one hop away: asking it runs alongside discovery, on
	// its own short timeouts, and creates no flows through the NAT.
	if gw.IsValid() && gwLocal.IsValid() {
		wg.Go(func() { r.PortMapping = tryPortMapping(ctx, gw, gwLocal) })
	}
	for i := range r.Interfaces {
		ir := &r.Interfaces[i]
		ifc := ifs[slices.IndexFunc(ifs, func(n netif.Interface) bool { return n.Name == ir.Name })]
		wg.Go(func() { ir.Routes = netif.Routes(ctx, &ifc, stun.Prober(servers)) })
		for j := range ir.Families {
			f := &ir.Families[j]
			if k := slices.IndexFunc(opt.Known, func(d stun.Discovery) bool { return d.Local == f.Local }); k >= 0 {
				d := opt.Known[k]
				for _, s := range d.Servers {
					add(outcome("stun", s.Server, s.RTT, errOf(s.Error)))
				}
				f.setProfile(d.Profile)
				f.Known = true
				continue
			}
			wg.Go(func() {
				p, res, err := stun.Discover(ctx, f.Local, servers)
				for _, s := range res {
					add(outcome("stun", s.Server, s.RTT, errOf(s.Error)))
				}
				if errors.Is(err, stun.ErrNoServer) && len(unresolved) > 0 {
					err = fmt.Errorf("no %v STUN server: none of the configured ones could be resolved", f.Family)
				}
				if err != nil {
					f.Error = err.Error()
					return
				}
				f.setProfile(p)
			})
		}
	}
	wg.Wait()

	r.Servers = dedupe(out)
	r.Verdict = verdict(r)
	r.Took = time.Since(r.Started)
	return r
}

// tryPortMapping asks the router which protocols it speaks and, if any,
// maps a UDP port of local for a moment to see whether mapping really works
// (a router can answer and still refuse every mapping).
func tryPortMapping(ctx context.Context, gw, local netip.Addr) *PortMapping {
	pm := &PortMapping{Gateway: portmap.Probe(ctx, gw)}
	if !pm.Gateway.NATPMP && !pm.Gateway.UPnP {
		return pm
	}
	pm.Tried = true
	// The port of a socket held open meanwhile, so nothing else can take it.
	c, err := stun.Listen(ctx, netip.AddrPortFrom(local, 0))
	if err != nil {
		pm.Error = err.Error()
		return pm
	}
	defer c.Close()
	m, err := portmap.Map(ctx, gw, c.LocalAddr(), "udp", time.Minute)
	if err != nil {
		pm.Error = err.Error()
		return pm
	}
	pm.Worked, pm.Method, pm.External = true, m.Method(), m.External()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	m.Release(rctx)
	return pm
}

func outcome(kind, server string, rtt time.Duration, err error) ServerOutcome {
	o := ServerOutcome{Kind: kind, Server: server, OK: err == nil}
	if err != nil {
		o.Error = err.Error()
	} else {
		o.RTT = rtt
	}
	return o
}

type stringError string

func (e stringError) Error() string { return string(e) }

func errOf(s string) error {
	if s == "" {
		return nil
	}
	return stringError(s)
}

// dedupe keeps one outcome per server, a success over a failure (the same
// STUN server is asked once per interface and family), sorted by kind.
func dedupe(in []ServerOutcome) []ServerOutcome {
	var out []ServerOutcome
	for _, o := range in {
		i := slices.IndexFunc(out, func(x ServerOutcome) bool { return x.Kind == o.Kind && x.Server == o.Server })
		switch {
		case i < 0:
			out = append(out, o)
		case !out[i].OK && o.OK:
			out[i] = o
		}
	}
	order := map[string]int{"stun": 0, "turn": 1, "mqtt": 2, "ntp": 3}
	slices.SortStableFunc(out, func(a, b ServerOutcome) int { return order[a.Kind] - order[b.Kind] })
	return out
}
