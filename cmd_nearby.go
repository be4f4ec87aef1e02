package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"p2pd/netcore/identity"
	"p2pd/netcore/lan"
)

// nearbyPeer is a node found on the LAN, as `p2pd nearby` prints it.
type nearbyPeer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	From    string `json:"from"`
}

// cmdNearby listens for P2PD nodes on the local network (no server
// needed) and lists them.
func cmdNearby(args []string, stdout io.Writer) error {
	fs := newFlags("nearby", stdout)
	wait := fs.Duration("wait", 2*lan.Every+time.Second, "how long to listen")
	asJSON := fs.Bool("json", false, "print JSON")
	nf := addNodeFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop, n, err := startNodeUntilSignal(nf)
	if err != nil {
		return err
	}
	defer stop()
	defer n.Close()
	var mu sync.Mutex
	var found []nearbyPeer
	seen := map[identity.ID]bool{}
	lctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	err = lan.Run(lctx, n.Address, func(p lan.Peer) {
		id := identity.IDOf(p.Address.Key)
		text, _ := p.Address.Encode()
		mu.Lock()
		defer mu.Unlock()
		if !seen[id] {
			seen[id] = true
			found = append(found, nearbyPeer{ID: id.String(), Address: text, From: p.From.String()})
		}
	})
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if *asJSON {
		return writeJSON(stdout, found)
	}
	if len(found) == 0 {
		fmt.Fprintln(stdout, "No P2PD node answered on this network.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, p := range found {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.From, p.Address)
	}
	return tw.Flush()
}
