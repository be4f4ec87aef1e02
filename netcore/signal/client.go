package signal

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"p2pd/netcore/config"
)

const (
	// qos is MQTT "at least once": the broker acknowledges each publish,
	// so a send knows it reached a broker; duplicates are dropped by id.
	qos = 1
	// sendVia is how many of the peer's brokers a message goes through:
	// one may be down.
	sendVia = 2
	// maxReconnect caps the reconnection backoff to a broker that dropped.
	maxReconnect = 30 * time.Second
	// keepAlive makes a dead broker connection noticed within a minute.
	keepAlive = 30 * time.Second
	// dialPatience bounds one attempt at a broker connection (TCP and
	// the CONNACK): on a lossy path retransmissions take seconds, and an
	// attempt given up on starts again from a new SYN.
	dialPatience = 10 * time.Second
)

// Client sends and receives signaling messages through MQTT brokers.
type Client struct {
	sealer  *Sealer
	topic   string
	accept  func(from ed25519.PublicKey, kind byte) bool
	handler func(Message)
	log     *slog.Logger

	subscribed func() // see WithSubscribed

	mu         sync.Mutex
	brokers    map[netip.AddrPort]*broker
	unresolved map[string]error // broker names not found yet, and why
	names      int              // brokers configured
	closed     bool
	life       context.Context // ends with Close
	end        context.CancelFunc
	ready      chan struct{} // closed at the first subscription
	readyOnce  sync.Once
	missed     chan struct{} // a broker's name did not resolve (Ready looks again)
	dropped    atomic.Int64
}

type broker struct {
	addr       netip.AddrPort
	c          mqtt.Client
	own        atomic.Bool // this node listens here
	subscribed atomic.Bool // the subscription is in place
}

// Option configures a Client.
type Option func(*Client)

// WithAccept drops messages whose sender and kind accept refuses (a node
// that only talks to friends, or a reply to a request never made).
func WithAccept(accept func(from ed25519.PublicKey, kind byte) bool) Option {
	return func(c *Client) { c.accept = accept }
}

// WithSubscribed calls f (on a goroutine of its own) each time a broker
// takes this node's subscription: the list [Client.Brokers] returns grew,
// or a broker came back.
func WithSubscribed(f func()) Option { return func(c *Client) { c.subscribed = f } }

// WithLogger sets where dropped messages are logged (at debug level).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// Listen starts a client ([Start]) and waits until one broker has the
// subscription ([Client.Ready]). It fails, and closes the client, if
// none did before ctx ended.
func Listen(ctx context.Context, s *Sealer, brokers []config.Endpoint, handler func(Message), opts ...Option) (*Client, error) {
	c, err := Start(s, brokers, handler, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Ready(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Start connects to the brokers in the background and subscribes to this
// node's topic on each, calling handler for every message that opens. It
// returns at once. A broker whose name does not resolve is looked up
// again, and one that does not answer (or drops later) is dialed again,
// with backoff, until Close: a node started before its network or its
// brokers were up gets signaling when they come. [Client.Ready] waits for
// the first subscription; [WithSubscribed] hears of each one.
func Start(s *Sealer, brokers []config.Endpoint, handler func(Message), opts ...Option) (*Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("no MQTT broker configured")
	}
	c := &Client{sealer: s, topic: Topic(s.pub), handler: handler, log: slog.Default(), brokers: map[netip.AddrPort]*broker{},
		ready: make(chan struct{}), missed: make(chan struct{}, 1)}
	c.life, c.end = context.WithCancel(context.Background())
	for _, o := range opts {
		o(c)
	}
	c.names = len(brokers)
	for _, ep := range brokers {
		go c.reach(ep)
	}
	return c, nil
}

// Ready waits until one broker has this node's subscription, or ctx ends,
// or no broker's name resolves (no network yet: waiting would only delay
// the caller, and the client looks again in the background).
func (c *Client) Ready(ctx context.Context) error {
	for {
		select {
		case <-c.ready:
			return nil
		default:
		}
		if c.noneResolved() {
			return fmt.Errorf("no MQTT broker found (looking again): %w", errors.Join(c.failures()...))
		}
		select {
		case <-c.ready:
			return nil
		case <-c.missed:
		case <-ctx.Done():
			if errs := c.failures(); len(errs) > 0 {
				return fmt.Errorf("no MQTT broker answered (trying on): %w", errors.Join(errs...))
			}
			return fmt.Errorf("no MQTT broker answered (trying on): %w", ctx.Err())
		case <-c.life.Done():
			return errors.New("signaling client closed")
		}
	}
}

// noneResolved reports whether every broker's name has failed to resolve.
func (c *Client) noneResolved() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.unresolved) == c.names && len(c.brokers) == 0
}

// failures lists why the brokers not subscribed yet are not.
func (c *Client) failures() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, ep := range slices.Sorted(maps.Keys(c.unresolved)) {
		errs = append(errs, c.unresolved[ep])
	}
	for _, ap := range slices.SortedFunc(maps.Keys(c.brokers), netip.AddrPort.Compare) {
		if b := c.brokers[ap]; b.own.Load() && !b.subscribed.Load() {
			errs = append(errs, fmt.Errorf("MQTT broker %s: no subscription yet", ap))
		}
	}
	return errs
}

// reach resolves ep, again with backoff while it fails, then connects
// to it and subscribes (paho dials again by itself from there).
func (c *Client) reach(ep config.Endpoint) {
	for wait := time.Second; ; wait = min(2*wait, maxReconnect) {
		ap, err := resolve(c.life, ep)
		if err == nil {
			c.mu.Lock()
			delete(c.unresolved, ep.String())
			c.mu.Unlock()
			c.broker(ap, true)
			return
		}
		c.mu.Lock()
		if c.unresolved == nil {
			c.unresolved = map[string]error{}
		}
		c.unresolved[ep.String()] = err
		c.mu.Unlock()
		select {
		case c.missed <- struct{}{}:
		default:
		}
		c.log.Debug("signal: MQTT broker not found, looking again", "broker", ep, "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-c.life.Done():
			return
		}
	}
}

func resolve(ctx context.Context, ep config.Endpoint) (netip.AddrPort, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", ep.Host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("MQTT broker %s: %w", ep, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), ep.Port), nil
}

// broker returns the connection to ap, making it if needed. A broker this
// node listens on subscribes on every (re)connection.
func (c *Client) broker(ap netip.AddrPort, own bool) (*broker, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("signaling client closed")
	}
	if b, ok := c.brokers[ap]; ok {
		if own && !b.own.Load() {
			b.own.Store(true)
			b.subscribe(c)
		}
		return b, nil
	}
	b := &broker{addr: ap}
	b.own.Store(own)
	var id [8]byte
	rand.Read(id[:])
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + ap.String()).
		SetClientID("p2pd-" + hex.EncodeToString(id[:])).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetKeepAlive(keepAlive).
		SetConnectTimeout(dialPatience).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnect).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetOnConnectHandler(func(mqtt.Client) {
			if b.own.Load() {
				b.subscribe(c)
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			b.subscribed.Store(false)
			c.log.Debug("signal: lost an MQTT broker, reconnecting", "broker", ap, "err", err)
		})
	b.c = mqtt.NewClient(opts)
	b.c.Connect() // completes in the background, retrying
	c.brokers[ap] = b
	return b, nil
}

func (b *broker) subscribe(c *Client) {
	tok := b.c.Subscribe(c.topic, qos, func(_ mqtt.Client, m mqtt.Message) { c.receive(m.Payload(), b.addr) })
	// No timeout of our own: on a lossy path TCP's retransmissions can
	// delay the acknowledgement for seconds, and a subscription given up
	// on here would stay unused (and this broker out of the address)
	// until the connection dropped.
	go func() {
		select {
		case <-tok.Done():
			if tok.Error() == nil {
				b.subscribed.Store(true)
				c.readyOnce.Do(func() { close(c.ready) })
				if c.subscribed != nil {
					c.subscribed()
				}
			}
		case <-c.life.Done():
		}
	}()
}

// receive opens an envelope and hands its message on, or drops it.
func (c *Client) receive(env []byte, from netip.AddrPort) {
	m, err := c.sealer.Open(env)
	if err == nil && c.accept != nil && !c.accept(m.From, m.Kind) {
		err = ErrUnknownKey
	}
	if err != nil {
		c.dropped.Add(1)
		if !errors.Is(err, ErrReplay) { // the same message through a second broker is normal
			c.log.Debug("signal: dropped a message", "broker", from, "err", err)
		}
		return
	}
	if c.handler != nil {
		c.handler(m)
	}
}

// Dropped counts messages dropped (not opening, stale, replayed, refused).
func (c *Client) Dropped() int64 { return c.dropped.Load() }

// Brokers returns the brokers this node is subscribed on now: the ones to
// put in its address.
func (c *Client) Brokers() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.AddrPort
	for ap, b := range c.brokers {
		if b.own.Load() && b.subscribed.Load() {
			out = append(out, ap)
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

// Send seals a message to peer and publishes it through up to two of the
// brokers the peer listens on (via, from its address), at once. It returns
// when one broker has accepted it, or with every broker's error.
func (c *Client) Send(ctx context.Context, to ed25519.PublicKey, via []netip.AddrPort, kind byte, body []byte) error {
	env, _, err := c.sealer.Seal(to, kind, body)
	if err != nil {
		return err
	}
	if len(via) == 0 {
		return errors.New("the peer lists no signaling broker")
	}
	via = c.preferConnected(via)
	if len(via) > sendVia {
		via = via[:sendVia]
	}
	results := make(chan error, len(via))
	for _, ap := range via {
		go func() { results <- c.publish(ctx, ap, to, env) }()
	}
	var errs []error
	for range via {
		select {
		case err := <-results:
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		case <-ctx.Done():
			return fmt.Errorf("signaling: no broker took the message: %w", ctx.Err())
		}
	}
	return fmt.Errorf("signaling: no broker took the message: %w", errors.Join(errs...))
}

// preferConnected puts brokers already connected first: no handshake.
func (c *Client) preferConnected(via []netip.AddrPort) []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(via)
	slices.SortStableFunc(out, func(a, b netip.AddrPort) int {
		rank := func(ap netip.AddrPort) int {
			if br, ok := c.brokers[ap]; ok && br.c.IsConnectionOpen() {
				return 0
			}
			return 1
		}
		return rank(a) - rank(b)
	})
	return out
}

func (c *Client) publish(ctx context.Context, ap netip.AddrPort, to ed25519.PublicKey, env []byte) error {
	b, err := c.broker(ap, false)
	if err != nil {
		return err
	}
	// The caller's context bounds the wait: on a lossy path TCP's
	// retransmissions (a lost SYN alone costs a second) can outlast
	// connectTimeout, which is only the default for a caller with no
	// deadline.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, connectTimeout)
		defer cancel()
	}
	start := time.Now()
	// Published before the connection is up, the message waits in paho's
	// store; the token completes when the broker acknowledges it.
	tok := b.c.Publish(Topic(to), qos, false, env)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("MQTT broker %s: no acknowledgement within %v", ap, time.Since(start).Round(time.Millisecond))
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("MQTT broker %s: %w", ap, err)
	}
	return nil
}

// Close disconnects from every broker.
func (c *Client) Close() {
	c.mu.Lock()
	c.end()
	c.closed = true
	brokers := c.brokers
	c.brokers = map[netip.AddrPort]*broker{}
	c.mu.Unlock()
	for _, b := range brokers {
		b.c.Disconnect(100)
	}
}
