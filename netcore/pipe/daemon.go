package pipe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"p2pd/netcore/netif"
)

// PortRange is an inclusive range of ports; {0, 0} means one port the
// system picks.
type PortRange struct{ First, Last uint16 }

// ParsePorts parses a comma-separated list of ports and ranges, such as
// "0", "8000" or "8000-8010,9000".
func ParsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parsePort(lo)
		if err != nil {
			return nil, fmt.Errorf("ports %q: %q is not a port number", s, lo)
		}
		last := first
		if isRange {
			if last, err = parsePort(hi); err != nil {
				return nil, fmt.Errorf("ports %q: %q is not a port number", s, hi)
			}
		}
		if last < first || (first == 0 && last != 0) {
			return nil, fmt.Errorf("ports %q: range %s is empty or starts at 0", s, part)
		}
		out = append(out, PortRange{first, last})
	}
	return out, nil
}

// Spec says where a [Daemon] listens: every address (given directly, or a
// route's bind address) × every port of every range × every protocol,
// keeping only the families listed (all if none).
type Spec struct {
	Addrs    []netip.Addr
	Routes   []netif.Route
	Ports    []PortRange
	Protos   []Proto
	Families []netif.Family
}

// Listener is one socket a daemon listens on.
type Listener struct {
	Proto Proto          `json:"proto"`
	Addr  netip.AddrPort `json:"addr"`
}

// Daemon serves many listeners with one message handler, as the seed's
// Daemon: each message arrives with its sender and the pipe to reply on.
type Daemon struct {
	opts []Option
	mu   sync.Mutex
	srv  []*Pipe
}

// NewDaemon returns a daemon whose listeners call h for every message;
// opts configure every listener (framing, queue size, ...).
func NewDaemon(h MsgHandler, opts ...Option) *Daemon {
	return &Daemon{opts: append(slices.Clone(opts), WithMsgHandler(h))}
}

// Listen starts a listener for every combination in spec and returns them.
// If any fails, the ones this call started are closed and the error names
// the one that failed.
func (d *Daemon) Listen(ctx context.Context, spec Spec) ([]Listener, error) {
	addrs := slices.Clone(spec.Addrs)
	for _, r := range spec.Routes {
		ap, err := r.Bind(0)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, ap.Addr())
	}
	if len(spec.Families) > 0 {
		addrs = slices.DeleteFunc(addrs, func(a netip.Addr) bool {
			return !slices.Contains(spec.Families, netif.FamilyOf(a))
		})
	}
	ports := spec.Ports
	if len(ports) == 0 {
		ports = []PortRange{{}}
	}
	if len(addrs) == 0 || len(spec.Protos) == 0 {
		return nil, errors.New("daemon: nothing to listen on (no addresses of the wanted families, or no protocols)")
	}
	var started []*Pipe
	for _, a := range addrs {
		for _, pr := range ports {
			for port := uint32(pr.First); port <= uint32(pr.Last); port++ {
				for _, proto := range spec.Protos {
					p, err := Listen(ctx, proto, netip.AddrPortFrom(a, uint16(port)), d.opts...)
					if err != nil {
						for _, s := range started {
							s.Close()
						}
						return nil, fmt.Errorf("daemon: %w", err)
					}
					started = append(started, p)
				}
			}
		}
	}
	d.mu.Lock()
	d.srv = append(d.srv, started...)
	d.mu.Unlock()
	return listeners(started), nil
}

// Listeners returns every socket the daemon listens on.
func (d *Daemon) Listeners() []Listener {
	d.mu.Lock()
	defer d.mu.Unlock()
	return listeners(d.srv)
}

// Pipes returns the daemon's server pipes, one per listener.
func (d *Daemon) Pipes() []*Pipe {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.srv)
}

func listeners(ps []*Pipe) []Listener {
	out := make([]Listener, len(ps))
	for i, p := range ps {
		out[i] = Listener{Proto: p.proto, Addr: p.local}
	}
	return out
}

// Close closes every listener and their clients.
func (d *Daemon) Close() error {
	d.mu.Lock()
	srv := d.srv
	d.srv = nil
	d.mu.Unlock()
	for _, p := range srv {
		p.Close()
	}
	return nil
}
