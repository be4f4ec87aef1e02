// Package natlab builds, per test, a small internet in Linux network
// namespaces (NATLAB.md): an "internet" router with servers on it, two home
// routers with the NAT and firewall behaviours of RFC 4787, and one host
// behind each.
//
//	servers on inet lo: 203.0.113.1, 203.0.113.2, fd00:64::1, fd00:64::2
//	inet pA 198.51.100.1 fd00:64:a::1 <-> rA wan 198.51.100.2 fd00:64:a::2
//	inet pB 192.0.2.1    fd00:64:b::1 <-> rB wan 192.0.2.2    fd00:64:b::2
//	rA lan 10.0.1.1 fd00:a::1 <-> hA eth0 10.0.1.2 fd00:a::2   (B: 10.0.2.x, fd00:b::x)
//
// The servers are the real programs: coturn (STUN on two addresses for RFC
// 5780, and TURN), mosquitto (MQTT), chrony (NTP, never touching the clock),
// miniupnpd (UPnP IGD and NAT-PMP on a router), plus a small NTP responder
// whose clock runs at a fixed offset. Every lab has its own name prefix and
// runtime dir, so tests run in parallel, and is torn down (processes, then
// namespaces) when its test ends, pass or fail.
//
// Code under test runs inside a host as a child process: the test binary
// itself, re-executed in the namespace (see [Lab.Run] and [ChildMain]), or
// the p2pd binary. Needs root and iproute2, nftables, iptables and the
// servers' Debian packages (packaging/deps.sh test installs them).
package natlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/netns"
)

// Config chooses the routers' behaviour and the servers to start.
type Config struct {
	A, B NAT
	// TURN starts coturn: STUN on both server addresses and TURN (user
	// "test", password "test", realm "natlab").
	TURN bool
	// MQTT starts two mosquitto brokers, on ServerIP1:1883 and ServerIP2:1883.
	MQTT bool
	// NTP starts chrony on ServerIP1:123.
	NTP bool
	// NTPOffset, if not zero, starts an NTP responder on ServerIP2:123 whose
	// clock runs this far ahead (all namespaces share one real clock).
	NTPOffset time.Duration
	// UPnPA and UPnPB start miniupnpd (UPnP IGD + NAT-PMP) on that router.
	UPnPA, UPnPB bool
	// SecondHosts puts a second host on each home LAN (10.0.x.3, fd00:x::3):
	// two computers behind the same router.
	SecondHosts bool
}

// Host is a computer on a home LAN.
type Host struct {
	NS     string // namespace name
	V4, V6 netip.Addr
}

// Site is one home: a router and the host behind it.
type Site struct {
	Name         string // "A" or "B"
	Router, Host string // namespace names
	NAT          NAT
	WAN4, WAN6   netip.Addr // the router's internet side
	LAN4, LAN6   netip.Addr // the router's home side: the host's gateway
	Host4, Host6 netip.Addr // the host
	// Hosts lists every host on the LAN; Hosts[0] is Host.
	Hosts        []Host
	lanNet4      netip.Prefix
	lanNet6      netip.Prefix
	upnp         bool       // miniupnpd runs on the router and owns its IPv6 firewall
	inetIf       string     // inet's interface towards this router
	inet4, inet6 netip.Addr // inet's address on it
}

// Lab is a running lab.
type Lab struct {
	Prefix string // unique to this lab
	Inet   string // namespace of the internet router and servers
	A, B   *Site
	Dir    string // runtime dir: configs, pid files, logs
	cfg    Config

	mu    sync.Mutex
	procs []*proc
	stops []func()
}

var labSeq atomic.Uint32

// setupTimeout bounds building a lab: it takes about half a second.
const setupTimeout = 30 * time.Second

// Available reports why a lab cannot be built here, or nil.
func Available() error {
	if err := netns.Available(); err != nil {
		return err
	}
	for _, tool := range []string{"nft", "iptables-legacy", "turnserver", "mosquitto", "chronyd", "miniupnpd"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (packaging/deps.sh test installs the lab's packages)", tool)
		}
	}
	return nil
}

// Require skips t when no lab can be built, or fails it under CI
// (CI=true), where a skipped lab test would hide a broken lab.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("lab test cannot run under CI: %v", err)
		}
		t.Skipf("skipping lab test: %v", err)
	}
}

// New builds a lab for t and tears it down when t ends.
func New(t testing.TB, cfg Config) *Lab {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	l, err := Start(ctx, cfg)
	if l != nil {
		t.Cleanup(func() {
			if t.Failed() {
				l.dumpLogs(t)
			}
			l.Close()
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Start builds a lab; Close tears it down. On error the returned lab, if
// not nil, must still be closed.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	for _, n := range []NAT{cfg.A, cfg.B} {
		if err := n.validate(); err != nil {
			return nil, err
		}
	}
	prefix := fmt.Sprintf("nl%d-%d", os.Getpid()%100000, labSeq.Add(1))
	dir, err := os.MkdirTemp("", "natlab-"+prefix+"-")
	if err != nil {
		return nil, err
	}
	l := &Lab{
		Prefix: prefix,
		Inet:   prefix + "-inet",
		Dir:    dir,
		cfg:    cfg,
		A: &Site{
			Name: "A", Router: prefix + "-rA", Host: prefix + "-hA", NAT: cfg.A,
			WAN4: addr("198.51.100.2"), WAN6: addr("fd00:64:a::2"),
			LAN4: addr("10.0.1.1"), LAN6: addr("fd00:a::1"),
			Host4: addr("10.0.1.2"), Host6: addr("fd00:a::2"),
			lanNet4: netip.MustParsePrefix("10.0.1.0/24"), lanNet6: netip.MustParsePrefix("fd00:a::/64"),
			inetIf: "pA", inet4: addr("198.51.100.1"), inet6: addr("fd00:64:a::1"),
		},
		B: &Site{
			Name: "B", Router: prefix + "-rB", Host: prefix + "-hB", NAT: cfg.B,
			WAN4: addr("192.0.2.2"), WAN6: addr("fd00:64:b::2"),
			LAN4: addr("10.0.2.1"), LAN6: addr("fd00:b::1"),
			Host4: addr("10.0.2.2"), Host6: addr("fd00:b::2"),
			lanNet4: netip.MustParsePrefix("10.0.2.0/24"), lanNet6: netip.MustParsePrefix("fd00:b::/64"),
			inetIf: "pB", inet4: addr("192.0.2.1"), inet6: addr("fd00:64:b::1"),
		},
	}
	l.A.upnp, l.B.upnp = cfg.UPnPA, cfg.UPnPB
	for _, s := range l.Sites() {
		s.Hosts = []Host{{s.Host, s.Host4, s.Host6}}
		if cfg.SecondHosts {
			s.Hosts = append(s.Hosts, Host{s.Host + "2", s.Host4.Next(), s.Host6.Next()})
		}
	}
	if err := l.build(ctx); err != nil {
		return l, fmt.Errorf("natlab: building the network: %w", err)
	}
	if err := l.startServices(ctx); err != nil {
		return l, fmt.Errorf("natlab: starting servers: %w", err)
	}
	return l, nil
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// namespaces lists the lab's namespaces, the internet first.
func (l *Lab) namespaces() []string {
	out := []string{l.Inet}
	for _, s := range l.Sites() {
		out = append(out, s.Router)
		for _, h := range s.Hosts {
			out = append(out, h.NS)
		}
	}
	return out
}

// Sites returns both homes.
func (l *Lab) Sites() []*Site { return []*Site{l.A, l.B} }

func (l *Lab) build(ctx context.Context) error {
	for _, ns := range l.namespaces() {
		if err := netns.Add(ctx, ns); err != nil {
			return err
		}
	}
	inet := []string{
		"route add blackhole " + SilentIP.String(),
		"addr add " + ServerIP1.String() + "/32 dev lo",
		"addr add " + ServerIP2.String() + "/32 dev lo",
		"addr add " + ServerIP1v6.String() + "/128 dev lo",
		"addr add " + ServerIP2v6.String() + "/128 dev lo",
	}
	for _, s := range l.Sites() {
		// Each veth is made directly between its two namespaces.
		if err := netns.IP(ctx, "-n", l.Inet, "link", "add", s.inetIf, "type", "veth", "peer", "name", "wan", "netns", s.Router); err != nil {
			return err
		}
		inet = append(inet,
			fmt.Sprintf("addr add %s/24 dev %s", s.inet4, s.inetIf),
			fmt.Sprintf("addr add %s/64 dev %s", s.inet6, s.inetIf),
			fmt.Sprintf("link set %s up", s.inetIf),
			// IPv6 homes are routed; IPv4 ones only when they have no NAT.
			fmt.Sprintf("route add %s via %s", s.lanNet6, s.WAN6),
		)
		if s.NAT.Mapping == MapNone {
			inet = append(inet, fmt.Sprintf("route add %s via %s", s.lanNet4, s.WAN4))
		}
		// The LAN is a bridge with a port per host, like a home switch.
		router := []string{
			"link add lan type bridge",
			fmt.Sprintf("addr add %s/24 dev wan", s.WAN4),
			fmt.Sprintf("addr add %s/64 dev wan", s.WAN6),
			fmt.Sprintf("addr add %s/24 dev lan", s.LAN4),
			fmt.Sprintf("addr add %s/64 dev lan", s.LAN6),
		}
		for i, h := range s.Hosts {
			port := fmt.Sprintf("lanp%d", i)
			router = append(router,
				fmt.Sprintf("link add %s type veth peer name eth0 netns %s", port, h.NS),
				fmt.Sprintf("link set %s master lan", port),
				fmt.Sprintf("link set %s up", port))
		}
		router = append(router, "link set wan up", "link set lan up",
			fmt.Sprintf("route add default via %s", s.inet4),
			fmt.Sprintf("route add default via %s", s.inet6))
		if err := l.batch(ctx, s.Router, router); err != nil {
			return err
		}
		for _, h := range s.Hosts {
			if err := l.batch(ctx, h.NS, []string{
				fmt.Sprintf("addr add %s/24 dev eth0", h.V4),
				fmt.Sprintf("addr add %s/64 dev eth0", h.V6),
				"link set eth0 up",
				fmt.Sprintf("route add default via %s", s.LAN4),
				fmt.Sprintf("route add default via %s", s.LAN6),
			}); err != nil {
				return err
			}
		}
	}
	if err := l.batch(ctx, l.Inet, inet); err != nil {
		return err
	}

	// IPv6 neighbour discovery needs each link's link-local address, which
	// the kernel adds a few milliseconds after the link comes up; traffic
	// sent before then waits out a one-second retransmission.
	links := map[string]int{l.Inet: 2}
	for _, s := range l.Sites() {
		links[s.Router] = 2 + len(s.Hosts) // wan, the bridge and its ports
		for _, h := range s.Hosts {
			links[h.NS] = 1
		}
	}
	for ns, n := range links {
		if err := waitLinkLocal(ctx, ns, n); err != nil {
			return err
		}
	}

	forwarding := []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"}
	if _, err := netns.Exec(ctx, l.Inet, "sysctl", append([]string{"-qw"}, forwarding...)...); err != nil {
		return err
	}
	for _, s := range l.Sites() {
		sysctls := forwarding
		// Where br_netfilter is loaded, bridged frames would pass through the
		// router's IP firewall; a home switch does not filter.
		if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
			sysctls = append(slices.Clone(sysctls), "net.bridge.bridge-nf-call-iptables=0",
				"net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0")
		}
		if t := s.NAT.UDPTimeout; t > 0 {
			secs := fmt.Sprint(int(t.Seconds()))
			sysctls = append(sysctls, "net.netfilter.nf_conntrack_udp_timeout="+secs, "net.netfilter.nf_conntrack_udp_timeout_stream="+secs)
		}
		if _, err := netns.Exec(ctx, s.Router, "sysctl", append([]string{"-qw"}, sysctls...)...); err != nil {
			return err
		}
		rules := filepath.Join(l.Dir, "router"+s.Name+".nft")
		if err := os.WriteFile(rules, []byte(s.rules()), 0o644); err != nil {
			return err
		}
		if _, err := netns.Exec(ctx, s.Router, "nft", "-f", rules); err != nil {
			return err
		}
	}
	return nil
}

// waitLinkLocal waits until n interfaces of namespace ns have a usable
// IPv6 link-local address.
func waitLinkLocal(ctx context.Context, ns string, n int) error {
	for {
		out, err := netns.Exec(ctx, ns, "ip", "-6", "-o", "addr", "show", "scope", "link")
		if err != nil {
			return err
		}
		ready := 0
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "inet6 fe80:") && !strings.Contains(line, "tentative") {
				ready++
			}
		}
		if ready >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: links have no IPv6 link-local addresses:\n%s", ns, out)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// batch runs `ip -batch` with cmds inside namespace ns.
func (l *Lab) batch(ctx context.Context, ns string, cmds []string) error {
	f, err := os.CreateTemp(l.Dir, "ip-"+filepath.Base(ns)+"-*.batch")
	if err != nil {
		return err
	}
	f.WriteString(strings.Join(cmds, "\n") + "\n")
	f.Close()
	return netns.IP(ctx, "-n", ns, "-batch", f.Name())
}

// Close stops the lab's servers and deletes its namespaces (killing
// whatever still runs in them) and runtime dir.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs, stops := l.procs, l.stops
	l.procs, l.stops = nil, nil
	l.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	for _, p := range procs {
		p.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var errs []error
	for _, ns := range slices.Backward(l.namespaces()) {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			errs = append(errs, netns.Delete(ctx, ns))
		}
	}
	errs = append(errs, os.RemoveAll(l.Dir))
	return errors.Join(errs...)
}

// Exec runs a command inside namespace ns and returns its standard output.
func (l *Lab) Exec(ctx context.Context, ns, name string, args ...string) ([]byte, error) {
	return netns.Exec(ctx, ns, name, args...)
}

// LimitRate limits every internet link to rate (tc's notation: "1gbit",
// "100mbit") both ways, as a home connection of that speed: a token
// bucket on the internet router's side of each link and on each home
// router's WAN side. Without it the links are as fast as the machine.
func (l *Lab) LimitRate(ctx context.Context, rate string) error {
	for _, s := range l.Sites() {
		for _, at := range [][2]string{{l.Inet, s.inetIf}, {s.Router, "wan"}} {
			if out, err := l.Exec(ctx, at[0], "tc", "qdisc", "replace", "dev", at[1], "root", "tbf", "rate", rate, "burst", "1mb", "latency", "20ms"); err != nil {
				return fmt.Errorf("natlab: limiting %s in %s to %s: %w: %s", at[1], at[0], rate, err, out)
			}
		}
	}
	return nil
}

// NodeConfig returns a P2PD config that points at the lab's servers.
func (l *Lab) NodeConfig() config.Config {
	c := config.Config{
		STUN: []string{"udp://203.0.113.1:3478", "tcp://203.0.113.1:3478", "udp://[fd00:64::1]:3478", "tcp://[fd00:64::1]:3478"},
		MQTT: []string{"tcp://203.0.113.1:1883", "tcp://203.0.113.2:1883"},
		TURN: []config.TURN{{URL: "turn:203.0.113.1:3478", User: "test", Pass: "test", Realm: "natlab"}},
		NTP:  []string{"203.0.113.1"},
	}
	if l.cfg.NTPOffset != 0 {
		c.NTP = []string{ServerIP2.String()}
	}
	return c
}

// WriteNodeConfig writes c as a config file in the lab's dir and returns
// its path.
func (l *Lab) WriteNodeConfig(name string, c config.Config) (string, error) {
	path := filepath.Join(l.Dir, name+".json")
	data, err := jsonMarshal(c)
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, data, 0o644)
}

func (l *Lab) dumpLogs(t testing.TB) {
	logs, _ := filepath.Glob(filepath.Join(l.Dir, "*.log"))
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		t.Logf("natlab %s (tail):\n%s", filepath.Base(f), data)
	}
	for _, s := range l.Sites() {
		t.Logf("natlab router %s: %v", s.Name, s.NAT)
	}
}
