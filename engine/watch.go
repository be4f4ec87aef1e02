package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"p2pd/netcore/netif"
)

// watchEvery is how often the network is looked at: a change shows
// within two looks (one to see it, one to see it settled).
const watchEvery = 2 * time.Second

// netState is what of the network matters to the node: each usable
// address with its interface, and the default routes.
type netState []string

// currentNet reads the network's state.
func currentNet() (netState, error) {
	all, err := netif.List(netif.Options{})
	if err != nil {
		return nil, err
	}
	var s netState
	for _, i := range all {
		if !i.Up || i.Loopback {
			continue
		}
		for _, a := range i.Addrs {
			if a.Scope() == netif.ScopeLinkLocal {
				continue
			}
			s = append(s, a.IP.String()+" on "+i.Name)
		}
		if i.Default4 {
			s = append(s, "IPv4 default route via "+i.Name)
		}
		if i.Default6 {
			s = append(s, "IPv6 default route via "+i.Name)
		}
	}
	slices.Sort(s)
	return s, nil
}

// describe words the change from old to s.
func (s netState) describe(old netState) string {
	var gone, came []string
	for _, x := range old {
		if !slices.Contains(s, x) {
			gone = append(gone, x)
		}
	}
	for _, x := range s {
		if !slices.Contains(old, x) {
			came = append(came, x)
		}
	}
	var parts []string
	if len(gone) > 0 {
		parts = append(parts, "gone: "+strings.Join(gone, ", "))
	}
	if len(came) > 0 {
		parts = append(parts, "new: "+strings.Join(came, ", "))
	}
	if len(parts) == 0 {
		return "the network changed"
	}
	return "the network changed (" + strings.Join(parts, "; ") + ")"
}

// watchNetwork starts the node again when the network changes (an
// interface up or down, an address or default route changed, another
// Wi-Fi) and tells the app, until ctx ends. A change must hold for two
// looks: interfaces come up in steps.
func (e *Engine) watchNetwork(ctx context.Context) {
	known, err := currentNet()
	if err != nil {
		e.opt.Logger.Warn("engine: cannot watch the network", "err", err)
		return
	}
	var pending netState
	t := time.NewTicker(e.opt.WatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := currentNet()
		if err != nil {
			continue
		}
		switch {
		case slices.Equal(now, known):
			pending = nil
			continue
		case !slices.Equal(now, pending):
			pending = now // seen once: look again
			continue
		}
		change := now.describe(known)
		known, pending = now, nil
		e.opt.Logger.Info("engine: "+change+"; starting again", "state", fmt.Sprint(now))
		s, err := e.Restart(ctx)
		if h := e.hook().Network; h != nil {
			h(s, change, err)
		}
	}
}
