// Package portmap asks the home router to forward a port to this host, so
// friends can connect to it directly: NAT-PMP (RFC 6886, through
// github.com/jackpal/go-nat-pmp) and UPnP IGD (through
// github.com/huin/goupnp), plus IPv6 firewall pinholes where the router's
// IGD offers WANIPv6FirewallControl.
//
// Unlike the seed library, which mapped forever, a [Mapping] is leased for
// a finite time; a [Keeper] renews it before it lapses and removes it on
// Close, so a crashed or uninstalled P2PD leaves no hole in the router.
package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Method names a port mapping protocol.
type Method string

// Port mapping protocols.
const (
	NATPMP Method = "NAT-PMP"
	UPnP   Method = "UPnP"
)

const (
	// DefaultLease is how long a mapping is asked for: long enough that a
	// missed renewal or two is harmless, short enough that a mapping
	// outlives a crashed P2PD by at most an hour.
	DefaultLease = time.Hour
	// probeTimeout bounds each question to the router: it is one hop
	// away, so 250 ms covers even a busy one (as Tailscale's portmapper
	// reasons), and a router that has not answered by then speaks neither
	// protocol.
	probeTimeout = 250 * time.Millisecond
	// requestTimeout bounds a mapping request once the router is known to
	// answer: UPnP's SOAP over HTTP takes a few round trips.
	requestTimeout = 2 * time.Second
)

// Mapping is a port the router forwards to this host.
type Mapping interface {
	// Method returns the protocol that made the mapping.
	Method() Method
	// Proto returns "tcp" or "udp".
	Proto() string
	// Local returns the forwarded local address.
	Local() netip.AddrPort
	// External returns the address peers reach it at: the router's
	// external address and port (for an IPv6 pinhole, Local itself).
	External() netip.AddrPort
	// GoodUntil returns when the lease ends if not renewed.
	GoodUntil() time.Time
	// Renew extends the lease.
	Renew(ctx context.Context) error
	// Release asks the router to remove the mapping.
	Release(ctx context.Context) error
}

// Gateway is what a router offers.
type Gateway struct {
	Addr netip.Addr `json:"addr"`
	// NATPMP says whether the router answered NAT-PMP, and with which
	// external address.
	NATPMP         bool       `json:"natpmp"`
	NATPMPExternal netip.Addr `json:"natpmp_external,omitzero"`
	// UPnP says whether an Internet Gateway Device answered, where its
	// description lives, its external address and whether it offers IPv6
	// pinholes.
	UPnP         bool       `json:"upnp"`
	UPnPURL      string     `json:"upnp_url,omitempty"`
	UPnPExternal netip.Addr `json:"upnp_external,omitzero"`
	UPnPPinholes bool       `json:"upnp_pinholes"`
}

// Probe asks the router at gw which protocols it speaks, both at once.
func Probe(ctx context.Context, gw netip.Addr) Gateway {
	g := Gateway{Addr: gw}
	var wg sync.WaitGroup
	wg.Go(func() {
		if ext, err := pmpExternal(ctx, gw); err == nil {
			g.NATPMP, g.NATPMPExternal = true, ext
		}
	})
	wg.Go(func() {
		if d, err := discoverIGD(ctx, gw); err == nil {
			g.UPnP, g.UPnPURL, g.UPnPPinholes = true, d.url, d.pinholes != nil
			if ext, err := d.external(ctx); err == nil {
				g.UPnPExternal = ext
			}
		}
	})
	wg.Wait()
	return g
}

// ErrNoGateway is returned by Map when the router speaks no mapping protocol.
var ErrNoGateway = errors.New("the router answers neither NAT-PMP nor UPnP")

// Map asks the router at gw to forward proto ("tcp" or "udp") traffic to
// local for lease: NAT-PMP first (one round trip), then UPnP. For an IPv6
// local address it asks the router's IPv6 address gw for a UPnP firewall
// pinhole instead.
func Map(ctx context.Context, gw netip.Addr, local netip.AddrPort, proto string, lease time.Duration) (Mapping, error) {
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("port mapping: unknown protocol %q", proto)
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	if local.Addr().Is6() && !local.Addr().Is4In6() {
		d, err := discoverIGD(ctx, gw)
		if err != nil {
			return nil, fmt.Errorf("IPv6 pinhole: %w", err)
		}
		return d.pinhole(ctx, local, proto, lease)
	}
	var errs []error
	m, err := pmpMap(ctx, gw, local, proto, lease)
	if err == nil {
		return m, nil
	}
	errs = append(errs, fmt.Errorf("NAT-PMP: %w", err))
	d, err := discoverIGD(ctx, gw)
	if err == nil {
		if m, err := d.portMapping(ctx, local, proto, lease); err == nil {
			return m, nil
		} else {
			errs = append(errs, fmt.Errorf("UPnP: %w", err))
		}
	} else {
		errs = append(errs, fmt.Errorf("UPnP: %w", err))
	}
	return nil, fmt.Errorf("port mapping %s %v: %w", proto, local, errors.Join(errs...))
}

// Keeper keeps a mapping alive: it renews the lease halfway through and
// releases the mapping on Close.
type Keeper struct {
	m      Mapping
	cancel context.CancelFunc
	done   chan struct{}
}

const (
	// renewRetry is how soon a failed renewal is tried again while the
	// lease still has half its time left: a minute's wait loses nothing.
	renewRetry = time.Minute
	// minRenewRetry is the least wait between attempts, however close the
	// lease is to running out (or past it): a router that refuses at once
	// must not be asked in a tight loop.
	minRenewRetry = 5 * time.Second
)

// Keep starts renewing m; lost, if not nil, is told of renewals that fail.
func Keep(m Mapping, lost func(error)) *Keeper {
	ctx, cancel := context.WithCancel(context.Background())
	k := &Keeper{m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		next := time.Until(m.GoodUntil()) / 2
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(next):
			}
			rctx, rcancel := context.WithTimeout(ctx, requestTimeout)
			err := m.Renew(rctx)
			rcancel()
			next = max(minRenewRetry, time.Until(m.GoodUntil())/2)
			if err != nil {
				next = max(minRenewRetry, min(renewRetry, time.Until(m.GoodUntil())/2))
				if lost != nil && ctx.Err() == nil {
					lost(err)
				}
			}
		}
	}()
	return k
}

// Mapping returns the kept mapping.
func (k *Keeper) Mapping() Mapping { return k.m }

// Close stops renewing and removes the mapping from the router.
func (k *Keeper) Close() error {
	k.cancel()
	<-k.done
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return k.m.Release(ctx)
}

// leaseEnd is when a mapping's lease runs out, safe for concurrent use.
type leaseEnd struct {
	mu    sync.Mutex
	until time.Time
}

// GoodUntil returns when the lease ends if not renewed.
func (l *leaseEnd) GoodUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

func (l *leaseEnd) set(t time.Time) {
	l.mu.Lock()
	l.until = t
	l.mu.Unlock()
}

// budget returns the time left for a call that takes a timeout, not a
// context: at most limit, at least a millisecond.
func budget(ctx context.Context, limit time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl))
	}
	return max(limit, time.Millisecond)
}
