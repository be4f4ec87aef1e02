// Package clock measures how far this computer's clock is off, with NTP
// (RFC 5905, through github.com/beevik/ntp), and gives a corrected clock.
// Hole punching meets at an agreed instant, so both peers need the same
// idea of "now" even when their system clocks disagree by seconds.
//
// Several servers are asked at once; the offset is the median of the
// answers after dropping outliers (a broken or lying server cannot move it
// unless it is the majority).
package clock

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// outlierFloor is the least distance from the median at which an
	// answer counts as an outlier: honest servers agree to a few
	// milliseconds, so 50 ms apart is a broken or lying one.
	outlierFloor = 50 * time.Millisecond
	// outlierMADs is how many median absolute deviations from the median
	// an answer may lie before it is dropped.
	outlierMADs = 3
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
	// beevik/ntp takes no context: its timeout is the budget left.
	r, err := ntp.QueryWithOptions(s.Host, ntp.QueryOptions{Port: int(s.Port), Timeout: timeout})
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

// combine returns the median offset of the good samples after dropping
// outliers, and marks the samples it used.
func combine(samples []Sample) (time.Duration, error) {
	var offsets []time.Duration
	var errs []error
	for _, s := range samples {
		if s.Error == "" {
			offsets = append(offsets, s.Offset)
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", s.Server, s.Error))
		}
	}
	if len(offsets) == 0 {
		return 0, fmt.Errorf("no NTP server answered: %w", errors.Join(errs...))
	}
	med := median(offsets)
	devs := make([]time.Duration, len(offsets))
	for i, o := range offsets {
		devs[i] = (o - med).Abs()
	}
	limit := max(outlierFloor, outlierMADs*median(devs))
	var kept []time.Duration
	for i := range samples {
		if samples[i].Error == "" && (samples[i].Offset-med).Abs() <= limit {
			samples[i].Used = true
			kept = append(kept, samples[i].Offset)
		}
	}
	return median(kept), nil
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
