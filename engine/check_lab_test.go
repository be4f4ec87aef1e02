package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
)

// checkChild starts an engine in a lab host with the config at args[0]
// and the data dir args[1], runs Check once, and prints the report of the
// start's check and then Check's, one JSON line each.
func checkChild(args []string) error {
	cfg, err := config.Load(args[0])
	if err != nil {
		return err
	}
	e, err := New(args[1], cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	enc := json.NewEncoder(os.Stdout)
	s, err := e.Start(ctx)
	if err != nil {
		return err
	}
	enc.Encode(s.Report)
	if s, err = e.Check(ctx); err != nil {
		return err
	}
	return enc.Encode(s.Report)
}

// TestStartCheckUsesNodeProfile: the check that follows the node's start
// takes the NAT profile the node has just measured instead of profiling
// again, with the STUN servers' outcomes; Check, which the user asks for,
// measures it anew, and finds the same NAT.
func TestStartCheckUsesNodeProfile(t *testing.T) {
	l := natlab.New(t, natlab.Config{A: natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}, MQTT: true, TURN: true, NTP: true})
	cfgPath, err := l.WriteNodeConfig("check", l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := l.Run(ctx, l.A.Host, "check", cfgPath, t.TempDir())
	if err != nil {
		t.Fatalf("the check child: %v\n%s", err, out)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var reports [2]netcheck.Report
	for i := range reports {
		if err := dec.Decode(&reports[i]); err != nil {
			t.Fatalf("report %d: %v\n%s", i, err, out)
		}
	}
	for i, r := range reports {
		fam := r.Primary(netif.IPv4)
		if fam == nil || fam.Profile == nil {
			t.Fatalf("report %d has no IPv4 profile: %+v", i, r.Interfaces)
		}
		if fam.NATType != reports[0].Primary(netif.IPv4).NATType {
			t.Errorf("report %d found %v, the start's check %v", i, fam.NATType, reports[0].Primary(netif.IPv4).NATType)
		}
		if want := i == 0; fam.Known != want {
			t.Errorf("report %d: the profile known from the node's start: %v, want %v", i, fam.Known, want)
		}
		stun := 0
		for _, s := range r.Servers {
			if s.Kind == "stun" && s.OK {
				stun++
			}
		}
		if stun == 0 {
			t.Errorf("report %d lists no STUN server that answered: %+v", i, r.Servers)
		}
		t.Logf("report %d: %v (known %v), %d STUN servers answered, took %v", i, fam.NATType, fam.Known, stun, r.Took.Round(time.Millisecond))
	}
}
