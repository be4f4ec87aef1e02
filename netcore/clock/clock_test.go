package clock

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
)

func TestCombine(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, tc := range []struct {
		name     string
		offsets  []time.Duration
		failures int
		want     time.Duration
		dropped  int
	}{
		{"one server", []time.Duration{ms(2500)}, 0, ms(2500), 0},
		{"agreeing servers", []time.Duration{ms(10), ms(12), ms(11)}, 0, ms(11), 0},
		{"one liar among three", []time.Duration{ms(10), ms(12), ms(-3600000)}, 0, ms(11), 1},
		{"failures do not count", []time.Duration{ms(5)}, 2, ms(5), 0},
		{"two agreeing", []time.Duration{ms(5), ms(25)}, 1, ms(15), 0},
	} {
		var samples []Sample
		for _, o := range tc.offsets {
			samples = append(samples, Sample{Server: "s", Offset: o})
		}
		for range tc.failures {
			samples = append(samples, Sample{Server: "dead", Error: "timeout"})
		}
		got, err := combine(samples)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
		dropped := 0
		for _, s := range samples {
			if s.Error == "" && !s.Used {
				dropped++
			}
		}
		if dropped != tc.dropped {
			t.Errorf("%s: dropped %d outliers, want %d", tc.name, dropped, tc.dropped)
		}
	}
	if _, err := combine([]Sample{{Server: "a:123", Error: "timeout"}}); err == nil || !strings.Contains(err.Error(), "a:123: timeout") {
		t.Errorf("all failed: %v", err)
	}
	// Two servers 10 s apart: no majority, so no offset (not the average).
	if off, err := combine([]Sample{{Server: "a", Offset: 0}, {Server: "b", Offset: 10 * time.Second}}); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Errorf("two disagreeing servers gave %v, %v", off, err)
	}
}

func TestZeroClockIsSystemClock(t *testing.T) {
	var c Clock
	if d := time.Until(c.Now()).Abs(); d > time.Second {
		t.Errorf("zero clock off by %v", d)
	}
	if _, err := c.Sync(context.Background(), nil); err == nil {
		t.Error("sync without servers succeeded")
	}
}

func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{
		// sync measures with the NTP servers in args and prints the result
		// and the corrected clock's distance from the system clock.
		"sync": func(args []string) error {
			eps, err := config.Config{NTP: args}.NTPEndpoints()
			if err != nil {
				return err
			}
			var c Clock
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			r, err := c.Sync(ctx, eps)
			took := time.Since(start)
			return json.NewEncoder(os.Stdout).Encode(struct {
				Result Result
				Err    string
				Skew   time.Duration
				Took   time.Duration
			}{r, errString(err), time.Until(c.Now()), took})
		},
	})
	os.Exit(m.Run())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestLabClock runs a node whose NTP servers are the lab's chrony, the
// responder whose clock is 2.5 s ahead, and a silent host.
func TestLabClock(t *testing.T) {
	const skew = 2500 * time.Millisecond
	l := natlab.New(t, natlab.Config{NTP: true, NTPOffset: skew})
	for _, tc := range []struct {
		name    string
		servers []string
		want    time.Duration
		fails   bool
	}{
		{"chrony", []string{"203.0.113.1"}, 0, false},
		{"skewed responder only", []string{natlab.ServerIP2.String()}, skew, false},
		{"silent host and chrony", []string{natlab.SilentIP.String(), "203.0.113.1"}, 0, false},
		{"silent host only", []string{natlab.SilentIP.String()}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := l.Run(ctx, l.A.Host, "sync", tc.servers...)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Result Result
				Err    string
				Skew   time.Duration
				Took   time.Duration
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if tc.fails {
				if got.Err == "" || !strings.Contains(got.Err, natlab.SilentIP.String()) {
					t.Errorf("error %q, want one naming the silent host", got.Err)
				}
			} else if (got.Result.Offset-tc.want).Abs() > 50*time.Millisecond || (got.Skew-tc.want).Abs() > 50*time.Millisecond {
				t.Errorf("offset %v, corrected clock ahead by %v; want %v within 50 ms (%s)", got.Result.Offset, got.Skew, tc.want, got.Err)
			}
			// A silent server costs at most one query timeout.
			if got.Took > QueryTimeout+500*time.Millisecond {
				t.Errorf("took %v", got.Took)
			}
		})
	}
}
