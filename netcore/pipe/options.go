package pipe

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"time"

	"p2pd/netcore/netif"
)

const (
	// DefaultQueueSize is how many messages a subscription keeps before it
	// drops the oldest: a second of chatter for a busy UDP protocol, and a
	// bounded amount of memory when nobody reads.
	DefaultQueueSize = 1000
	// DefaultDNSTimeout bounds a name lookup (as the seed's dns_timeout): a
	// resolver silent for 2 s is broken for an interactive program.
	DefaultDNSTimeout = 2 * time.Second
	// DefaultDedupSize is how many recent message ids duplicate suppression
	// remembers.
	DefaultDedupSize = 1000
)

// Option configures a pipe at Open, Listen, Wrap or WrapPacket (and a Daemon).
type Option func(*options) error

type options struct {
	framing    Framing
	maxFrame   int
	queueSize  int
	noAutoSub  bool
	local      netip.AddrPort
	hasLocal   bool
	reuse      bool
	resolver   *net.Resolver
	dnsTimeout time.Duration
	dedupSize  int
	msgID      func([]byte) []byte
	onMsg      MsgHandler
	onEnd      EndHandler
	seed       maphash.Seed
}

func buildOptions(opts []Option) (*options, error) {
	o := &options{
		maxFrame:   DefaultMaxFrame,
		queueSize:  DefaultQueueSize,
		resolver:   net.DefaultResolver,
		dnsTimeout: DefaultDNSTimeout,
		seed:       maphash.MakeSeed(),
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithFraming sets how a TCP pipe cuts its stream into messages (default Raw).
func WithFraming(f Framing) Option {
	return func(o *options) error {
		if f > Lines {
			return fmt.Errorf("unknown framing %v", f)
		}
		o.framing = f
		return nil
	}
}

// WithMaxFrame sets the largest frame or line accepted or sent, in bytes.
func WithMaxFrame(n int) Option {
	return func(o *options) error {
		if n <= 0 || n > 1<<31 {
			return fmt.Errorf("frame size limit %d: want 1 byte to 2 GiB", n)
		}
		o.maxFrame = n
		return nil
	}
}

// WithQueueSize sets how many messages each subscription queue holds.
func WithQueueSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("queue size %d: want at least 1", n)
		}
		o.queueSize = n
		return nil
	}
}

// WithoutDefaultSub stops a pipe with a destination from subscribing to
// every message (the seed's default), for callers that only use handlers
// or their own subscriptions.
func WithoutDefaultSub() Option {
	return func(o *options) error { o.noAutoSub = true; return nil }
}

// WithLocal binds a client pipe's socket to a local address (port 0: any).
func WithLocal(local netip.AddrPort) Option {
	return func(o *options) error {
		if !local.Addr().IsValid() {
			return errors.New("local address is not set")
		}
		o.local, o.hasLocal = local, true
		return nil
	}
}

// WithRoute binds a client pipe to a route's local address (see
// [netif.Route.Bind]), so its traffic leaves through that route.
func WithRoute(r netif.Route) Option {
	return func(o *options) error {
		local, err := r.Bind(0)
		if err != nil {
			return err
		}
		o.local, o.hasLocal = local, true
		return nil
	}
}

// WithReuse lets the pipe's socket share its local port with others (see
// [ReuseControl]).
func WithReuse() Option {
	return func(o *options) error { o.reuse = true; return nil }
}

// WithResolver sets the DNS resolver for host names (default net.DefaultResolver).
func WithResolver(r *net.Resolver) Option {
	return func(o *options) error { o.resolver = r; return nil }
}

// WithDNSTimeout bounds each name lookup.
func WithDNSTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("DNS timeout %v: want a positive duration", d)
		}
		o.dnsTimeout = d
		return nil
	}
}

// WithDedup drops messages whose id was already seen from the same sender
// IP among the last n ids the pipe remembers, from all senders together
// (n <= 0: DefaultDedupSize). id extracts a message's id; nil uses the
// whole message (as the seed did). An id func returning nil lets that
// message through unchecked.
func WithDedup(n int, id func(msg []byte) []byte) Option {
	return func(o *options) error {
		if n <= 0 {
			n = DefaultDedupSize
		}
		if id == nil {
			id = func(msg []byte) []byte { return msg }
		}
		o.dedupSize, o.msgID = n, id
		return nil
	}
}

// WithMsgHandler registers a message handler before the pipe starts, so
// not even the first message can be missed.
func WithMsgHandler(h MsgHandler) Option {
	return func(o *options) error { o.onMsg = h; return nil }
}

// WithEndHandler registers an end handler before the pipe starts.
func WithEndHandler(h EndHandler) Option {
	return func(o *options) error { o.onEnd = h; return nil }
}
