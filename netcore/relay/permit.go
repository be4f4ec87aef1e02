package relay

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v2"
)

// permissions are the peers' IPs an allocation lets in (CreatePermission,
// RFC 8656 §9), for either kind of allocation: a permission lasts 5
// minutes, so they are requested again every permissionRefresh until
// the allocation closes.
type permissions struct {
	name   string // the server as configured, for messages
	client *turn.Client
	// also runs after each round of refreshes (the UDP allocation's
	// channel bindings), until close.
	also func()

	every     time.Duration // permissionRefresh; shorter in tests
	refreshes atomic.Uint32 // successful refreshes, for tests

	closing chan struct{} // closed by close
	tasks   sync.WaitGroup

	mu         sync.Mutex // closing is closed under it
	ips        map[netip.Addr]bool
	refreshing bool // refresh runs
}

// newPermissions makes the permissions of an allocation on the server
// called name; set client before the first permit or keep.
func newPermissions(name string) *permissions {
	return &permissions{name: name, every: permissionRefresh,
		closing: make(chan struct{}), ips: map[netip.Addr]bool{}}
}

// permit installs permissions for ips now, bounded by ctx, and keeps them
// until close.
func (p *permissions) permit(ctx context.Context, ips []netip.Addr) error {
	var peers []netip.Addr
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.IsValid() && !slices.Contains(peers, ip) {
			peers = append(peers, ip)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	p.mu.Lock()
	if p.isClosing() {
		p.mu.Unlock()
		return fmt.Errorf("TURN server %s: permitting %v: %w", p.name, peers, net.ErrClosed)
	}
	p.tasks.Add(1)
	p.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer p.tasks.Done()
		done <- createPermission(p.client, peers)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("TURN server %s refused a permission for %v: %w", p.name, peers, err)
		}
	case <-ctx.Done():
		// The request goes on until pion gives up on it, or close.
		return fmt.Errorf("TURN server %s: no answer to a permission request for %v: %w", p.name, peers, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosing() {
		return fmt.Errorf("TURN server %s: permitting %v: %w", p.name, peers, net.ErrClosed)
	}
	for _, ip := range peers {
		p.ips[ip] = true
	}
	p.keepLocked()
	return nil
}

// keep starts the refreshes (for also, with no permission yet) unless they
// run already or p is closed.
func (p *permissions) keep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isClosing() {
		p.keepLocked()
	}
}

func (p *permissions) keepLocked() {
	if !p.refreshing {
		p.refreshing = true
		p.tasks.Go(p.refresh)
	}
}

// refresh requests the permissions again every p.every, then runs also,
// until close.
func (p *permissions) refresh() {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.closing:
			return
		case <-t.C:
		}
		p.mu.Lock()
		ips := slices.Collect(maps.Keys(p.ips))
		p.mu.Unlock()
		if len(ips) > 0 {
			if err := createPermission(p.client, ips); err != nil {
				if p.isClosing() {
					return
				}
				slog.Warn("relay: refreshing TURN permissions failed", "server", p.name, "peers", ips, "err", err)
			} else {
				p.refreshes.Add(1)
			}
		}
		if p.also != nil {
			p.also()
		}
	}
}

func (p *permissions) isClosing() bool {
	select {
	case <-p.closing:
		return true
	default:
		return false
	}
}

// close stops the refreshes and refuses new permits; wait, once the
// client is closed (which ends requests under way), waits for them.
func (p *permissions) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isClosing() {
		close(p.closing)
	}
}

func (p *permissions) wait() { p.tasks.Wait() }

// createPermission sends one CreatePermission request for ips on c's
// allocation, again for a stale nonce.
func createPermission(c *turn.Client, ips []netip.Addr) error {
	addrs := make([]net.Addr, len(ips))
	for i, ip := range ips {
		addrs[i] = &net.UDPAddr{IP: ip.AsSlice()}
	}
	var err error
	for range staleNonceRetries {
		// pion answers a stale nonce (438) with an unexported "try again"
		// error, having taken the new nonce: send again.
		if err = c.CreatePermission(addrs...); err == nil || err.Error() != "try again" {
			return err
		}
	}
	return err
}
