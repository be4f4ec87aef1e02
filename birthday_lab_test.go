package main

import (
	"slices"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// birthdayRuns is how many times TestPunchBirthday connects.
const birthdayRuns = 20

// TestPunchBirthday: A's router maps each destination to a random port
// (hard), B's maps predictably but filters per address and port (easy):
// no prediction meets, plain punching is skipped, and birthday probing
// connects. It runs birthdayRuns times, half started by each side, and
// reports the success rate and times; the relay covers the failures.
func TestPunchBirthday(t *testing.T) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	easy := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: easy, TURN: true, MQTT: true, NTP: true})
	na := nodeIn(t, l, l.A.Host, "a")
	nb := nodeIn(t, l, l.B.Host, "b")
	var took []time.Duration
	failed := 0
	for i := range birthdayRuns {
		from, to, who := l.A.Host, v4Only(t, nb.addr), "hard"
		if i%2 == 1 {
			from, to, who = l.B.Host, v4Only(t, na.addr), "easy"
		}
		r, err := connectIn(t, l, from, "c", to, "--strategies", "punch-tcp,punch-udp,punch-birthday", "--timeout", "10s")
		for _, s := range []string{node.PunchTCP, node.PunchUDP} {
			if e := find(r.Events, s); e == nil || e.State != node.Skipped {
				t.Errorf("%s should be skipped: %s", s, eventLines(r.Events))
			}
		}
		if err != nil || !r.Echo || r.Strategy != node.PunchBirthday {
			failed++
			t.Logf("run %d (%s side starts): no birthday path: %v %s", i, who, err, eventLines(r.Events))
			continue
		}
		took = append(took, r.ConnectTime)
		t.Logf("run %d (%s side starts): %v: %s", i, who, r.ConnectTime.Round(time.Millisecond), winner(r).Reason)
	}
	rate := float64(birthdayRuns-failed) / birthdayRuns
	if len(took) > 0 {
		slices.Sort(took)
		t.Logf("birthday probing: %d/%d connected (%.0f%%), median %v, max %v", birthdayRuns-failed, birthdayRuns, 100*rate, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	}
	// With 256 ports among 64 512 and up to 4096 probes a miss has odds
	// of about 1 in 10^7; more than two in twenty means it is broken.
	if failed > 2 {
		t.Errorf("birthday probing failed %d of %d runs", failed, birthdayRuns)
	}
}
