package main

import (
	"slices"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// BenchmarkConnect measures the time from Connect to a secure session, in
// the lab, for a pair where each kind of strategy wins (direct, punching,
// relay), and reports the median next to a baseline from the same run:
// the same pair connected the way the seed library does it, one strategy
// after another until one works (sequential/raced is the speed-up).
// Run it with `make bench` (or go test -run '^$' -bench Connect
// -benchtime 5x .).
func BenchmarkConnect(b *testing.B) {
	cases := []struct {
		name string
		a, b natlab.NAT
		want string // the kind of strategy expected to win
	}{
		{"direct", natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}, natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF}, "direct"},
		{"punch", natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}, natlab.NAT{Mapping: natlab.MapAPDMSequential, Filtering: natlab.FilterAPDF}, "punch"},
		{"relay", natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}, natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}, "relay"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			l := natlab.New(b, natlab.Config{A: c.a, B: c.b, TURN: true, MQTT: true, NTP: true})
			nb := nodeIn(b, l, l.B.Host, "b")
			to := v4Only(b, nb.addr)
			var raced, sequential []time.Duration
			for b.Loop() {
				r, err := connectIn(b, l, l.A.Host, "a", to)
				if err != nil || !r.Echo || kindOf(r.Strategy) != c.want {
					b.Fatalf("connect: %s, echo %v, err %v; want a %s strategy: %s", r.Strategy, r.Echo, err, c.want, eventLines(r.Events))
				}
				raced = append(raced, r.ConnectTime)
				sequential = append(sequential, oneByOne(b, l, to))
			}
			med, base := median(raced), median(sequential)
			b.ReportMetric(float64(med.Microseconds())/1000, "ms-median")
			b.ReportMetric(float64(base.Microseconds())/1000, "ms-sequential")
			b.ReportMetric(float64(base)/float64(med), "sequential/raced")
		})
	}
}

// oneByOne connects the seed's way: each strategy alone, in order, each
// until it works or gives up; it returns the time until one worked.
func oneByOne(b *testing.B, l *natlab.Lab, to string) time.Duration {
	var total time.Duration
	for _, s := range node.Strategies {
		r, err := connectIn(b, l, l.A.Host, "a-"+s, to, "--strategies", s)
		if err == nil && r.Echo {
			return total + r.ConnectTime
		}
		if len(r.Events) > 0 {
			total += r.Events[len(r.Events)-1].Elapsed
		}
	}
	b.Fatal("no strategy works on its own")
	return 0
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
