// Package clock measures how far this computer's clock is off, with NTP
// (RFC 5905, through github.com/beevik/ntp), and gives a corrected clock.
// Hole punching meets at an agreed instant, so both peers need the same
// idea of "now" even when their system clocks disagree by seconds.
//
// Several servers are asked at once; the offset is the median of the
// largest group of answers that agree, and that group must be a majority:
// a broken or lying server cannot move the offset, and when there is no
// majority (two servers that disagree) the offset is unknown, not averaged.
package clock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/ntp"

	"p2pd/netcore/config"
)

const (
	// QueryTimeout bounds one NTP exchange: a time server answers in one
	// round trip, and a slower answer would carry a delay error larger
	// than the precision hole punching needs.
	QueryTimeout = time.Second
	// agreement is how close two answers must be to agree: honest servers
	// agree to a few milliseconds, so 50 ms apart is a broken or lying one.
	agreement = 50 * time.Millisecond
)

// Sample is one server's answer.
type Sample struct {
	Server string        `json:"server"`
	Offset time.Duration `json:"offset"`
	RTT    time.Duration `json:"rtt"`
	Error  string        `json:"error,omitempty"`
	Used   bool          `json:"used"` // counted in the offset (not an outlier)
}

// Result is a measurement of the clock offset.
type Result struct {
	// Offset is how far the local clock is behind true time: true time is
	// time.Now().Add(Offset).
	Offset  time.Duration `json:"offset"`
	Samples []Sample      `json:"samples"`
}

// Measure asks every server at once and combines the answers.
func Measure(ctx context.Context, servers []config.Endpoint) (Result, error) {
	if len(servers) == 0 {
		return Result{}, errors.New("no NTP server configured")
	}
	samples := make([]Sample, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { samples[i] = query(ctx, s) })
	}
	wg.Wait()
	offset, err := combine(samples)
	return Result{Offset: offset, Samples: samples}, err
}

func query(ctx context.Context, s config.Endpoint) Sample {
	sample := Sample{Server: s.Addr()}
	timeout := QueryTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		sample.Error = "no time left to ask"
		return sample
	}
	// beevik/ntp takes no context and resolves names without a deadline:
	// resolve here, within the budget, and give it an address.
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(lctx, "ip", s.Host)
	if err != nil {
		sample.Error = fmt.Sprintf("cannot resolve %q: %v", s.Host, err)
		return sample
	}
	if dl, ok := lctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	r, err := ntp.QueryWithOptions(ips[0].Unmap().String(), ntp.QueryOptions{Port: int(s.Port), Timeout: max(timeout, time.Millisecond)})
	if err == nil {
		err = r.Validate()
	}
	if err != nil {
		sample.Error = err.Error()
		return sample
	}
	sample.Offset, sample.RTT = r.ClockOffset, r.RTT
	return sample
}

// combine finds the largest group of answers within agreement of one
// another and returns its median, marking the samples it used. The group
// must hold a majority of the answers.
func combine(samples []Sample) (time.Duration, error) {
	var errs []error
	good := 0
	for _, s := range samples {
		if s.Error == "" {
			good++
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", s.Server, s.Error))
		}
	}
	if good == 0 {
		return 0, fmt.Errorf("no NTP server answered: %w", errors.Join(errs...))
	}
	best, bestN := 0, 0
	for i, c := range samples {
		if c.Error != "" {
			continue
		}
		n := 0
		for _, s := range samples {
			if s.Error == "" && (s.Offset-c.Offset).Abs() <= agreement {
				n++
			}
		}
		if n > bestN {
			best, bestN = i, n
		}
	}
	if 2*bestN <= good {
		return 0, fmt.Errorf("the NTP servers disagree and none has a majority: %s", offsets(samples))
	}
	var kept []time.Duration
	for i := range samples {
		if samples[i].Error == "" && (samples[i].Offset-samples[best].Offset).Abs() <= agreement {
			samples[i].Used = true
			kept = append(kept, samples[i].Offset)
		}
	}
	return median(kept), nil
}

func offsets(samples []Sample) string {
	var parts []string
	for _, s := range samples {
		if s.Error == "" {
			parts = append(parts, fmt.Sprintf("%s says %v", s.Server, s.Offset.Round(time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Clock is the local clock corrected by the last measured offset. The
// zero Clock is the uncorrected system clock. Safe for concurrent use.
type Clock struct {
	mu     sync.RWMutex
	offset time.Duration
	synced time.Time
}

// Now returns the corrected time.
func (c *Clock) Now() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return time.Now().Add(c.offset)
}

// Offset returns the correction in use and when it was measured (zero if
// never).
func (c *Clock) Offset() (time.Duration, time.Time) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.offset, c.synced
}

// Sync measures the offset with servers and uses it from now on; on
// failure the previous correction stays.
func (c *Clock) Sync(ctx context.Context, servers []config.Endpoint) (Result, error) {
	r, err := Measure(ctx, servers)
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	c.offset, c.synced = r.Offset, time.Now()
	c.mu.Unlock()
	return r, nil
}
