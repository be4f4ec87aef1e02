package natlab

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"p2pd/netcore/netns"
)

// proc is a server process running in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// spawn starts name in namespace ns with its output in the lab's dir.
func (l *Lab) spawn(ns, logName, name string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(l.Dir, logName+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: logName, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

func (p *proc) stop() {
	// The lab is thrown away: nothing to shut down gracefully.
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// exited reports an error if the process has already died.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v (see %s.log)", p.name, p.err, p.name)
	default:
		return nil
	}
}

func (l *Lab) startServices(ctx context.Context) error {
	cfg := l.cfg
	if cfg.UPnPA || cfg.UPnPB {
		cfg.TURN = true // miniupnpd checks its external address with STUN
	}
	var waits []func() error
	if cfg.TURN {
		p, err := l.startCoturn()
		if err != nil {
			return err
		}
		waits = append(waits, func() error {
			return waitTCP(ctx, l.Inet, netip.AddrPortFrom(ServerIP2, 3479), p)
		})
	}
	if cfg.MQTT {
		for i, ips := range [][2]netip.Addr{{ServerIP1, ServerIP1v6}, {ServerIP2, ServerIP2v6}} {
			p, err := l.startMosquitto(i+1, ips)
			if err != nil {
				return err
			}
			waits = append(waits, func() error { return waitTCP(ctx, l.Inet, netip.AddrPortFrom(ips[0], 1883), p) })
		}
	}
	if cfg.NTP {
		p, err := l.startChrony()
		if err != nil {
			return err
		}
		waits = append(waits, func() error { return waitUDP(ctx, l.Inet, 123, p) })
	}
	if cfg.NTPOffset != 0 {
		if err := l.startSkewedNTP(netip.AddrPortFrom(ServerIP2, 123), cfg.NTPOffset); err != nil {
			return err
		}
	}
	for _, w := range waits {
		if err := w(); err != nil {
			return err
		}
	}
	// miniupnpd asks coturn for its external address as it starts.
	for _, s := range l.Sites() {
		if (s == l.A && cfg.UPnPA) || (s == l.B && cfg.UPnPB) {
			p, err := l.startMiniupnpd(ctx, s)
			if err != nil {
				return err
			}
			if err := waitTCP(ctx, s.Host, netip.AddrPortFrom(s.LAN4, UPnPPort), p); err != nil {
				return err
			}
		}
	}
	return nil
}

// TURN credentials in the lab.
const (
	TURNUser  = "test"
	TURNPass  = "test"
	TURNRealm = "natlab"
	// UPnPPort is miniupnpd's HTTP port on the router's LAN address.
	UPnPPort = 5000
)

func (l *Lab) startCoturn() (*proc, error) {
	run := l.Dir
	args := []string{"-n", "--no-cli", "--no-tls", "--no-dtls",
		"--listening-port", "3478", "--alt-listening-port", "3479",
		"--min-port", "49152", "--max-port", "49999",
		"--fingerprint", "--lt-cred-mech", "--user", TURNUser + ":" + TURNPass, "--realm", TURNRealm,
		"--userdb", filepath.Join(run, "turndb"), "--pidfile", filepath.Join(run, "turn.pid"),
		"--log-file", "stdout", "--simple-log",
		"--relay-ip", ServerIP1.String(), "--relay-ip", ServerIP1v6.String(),
	}
	for _, a := range []netip.Addr{ServerIP1, ServerIP2, ServerIP1v6, ServerIP2v6} {
		args = append(args, "--listening-ip", a.String())
	}
	return l.spawn(l.Inet, "coturn", "turnserver", args...)
}

// RestartBroker stops MQTT broker n (1 or 2) and starts it again, as a
// broker that goes down and comes back does; it returns once the broker
// listens again.
func (l *Lab) RestartBroker(ctx context.Context, n int) error {
	if err := l.StopBroker(n); err != nil {
		return err
	}
	return l.StartBroker(ctx, n)
}

// StopBroker stops MQTT broker n (1 or 2): its port then refuses
// connections until StartBroker.
func (l *Lab) StopBroker(n int) error {
	name := fmt.Sprintf("mosquitto%d", n)
	l.mu.Lock()
	i := slices.IndexFunc(l.procs, func(p *proc) bool { return p.name == name })
	var old *proc
	if i >= 0 {
		old = l.procs[i]
		l.procs = slices.Delete(l.procs, i, i+1)
	}
	l.mu.Unlock()
	if old == nil {
		return fmt.Errorf("natlab: no broker %d running", n)
	}
	old.stop()
	return nil
}

// StartBroker starts MQTT broker n (1 or 2) again after StopBroker; it
// returns once the broker listens.
func (l *Lab) StartBroker(ctx context.Context, n int) error {
	ips := [][2]netip.Addr{{ServerIP1, ServerIP1v6}, {ServerIP2, ServerIP2v6}}[n-1]
	p, err := l.startMosquitto(n, ips)
	if err != nil {
		return err
	}
	return waitTCP(ctx, l.Inet, netip.AddrPortFrom(ips[0], 1883), p)
}

// startMosquitto runs broker n on the addresses ips: two separate
// processes, as two public brokers are (a message reaches a subscriber
// only through the broker it was published to).
func (l *Lab) startMosquitto(n int, ips [2]netip.Addr) (*proc, error) {
	conf := filepath.Join(l.Dir, fmt.Sprintf("mosquitto%d.conf", n))
	text := fmt.Sprintf(`listener 1883 %s
listener 1883 %s
allow_anonymous true
persistence false
user root
pid_file %s
log_dest stdout
`, ips[0], ips[1], filepath.Join(l.Dir, fmt.Sprintf("mosquitto%d.pid", n)))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return l.spawn(l.Inet, fmt.Sprintf("mosquitto%d", n), "mosquitto", "-c", conf)
}

func (l *Lab) startChrony() (*proc, error) {
	conf := filepath.Join(l.Dir, "chrony.conf")
	text := fmt.Sprintf(`local stratum 8
allow all
bindaddress %s
bindaddress %s
bindcmdaddress %s
driftfile %s
pidfile %s
`, ServerIP1, ServerIP1v6, filepath.Join(l.Dir, "chronyd.sock"), filepath.Join(l.Dir, "chrony.drift"), filepath.Join(l.Dir, "chronyd.pid"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	// -x: serve time without ever touching this machine's clock.
	return l.spawn(l.Inet, "chrony", "chronyd", "-x", "-d", "-u", "root", "-f", conf)
}

// startMiniupnpd runs miniupnpd on site s's router. It speaks
// iptables-legacy, whose chains Debian's init script would make (but is
// broken), so they are made here.
func (l *Lab) startMiniupnpd(ctx context.Context, s *Site) (*proc, error) {
	for _, rule := range [][]string{
		{"-t", "nat", "-N", "MINIUPNPD"}, {"-t", "nat", "-A", "PREROUTING", "-i", "wan", "-j", "MINIUPNPD"},
		{"-t", "mangle", "-N", "MINIUPNPD"}, {"-t", "mangle", "-A", "PREROUTING", "-i", "wan", "-j", "MINIUPNPD"},
		{"-t", "filter", "-N", "MINIUPNPD"}, {"-t", "filter", "-A", "FORWARD", "-i", "wan", "!", "-o", "wan", "-j", "MINIUPNPD"},
		{"-t", "nat", "-N", "MINIUPNPD-POSTROUTING"}, {"-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MINIUPNPD-POSTROUTING"},
	} {
		if _, err := netns.Exec(ctx, s.Router, "iptables-legacy", rule...); err != nil {
			return nil, err
		}
	}
	// The IPv6 stateful firewall, in ip6tables so that miniupnpd's pinholes
	// (rules in the MINIUPNPD chain) can open it.
	v6 := [][]string{
		{"-t", "filter", "-N", "MINIUPNPD"},
		{"-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan", "!", "-o", "wan", "-j", "MINIUPNPD"},
	}
	if !s.NAT.IPv6Open {
		v6 = append(v6, []string{"-P", "FORWARD", "DROP"})
	}
	for _, rule := range v6 {
		if _, err := netns.Exec(ctx, s.Router, "ip6tables-legacy", rule...); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(l.Dir, "miniupnpd"+s.Name+".conf")
	text := fmt.Sprintf(`ext_ifname=wan
listening_ip=lan
http_port=%d
enable_natpmp=yes
enable_upnp=yes
ext_perform_stun=yes
ext_stun_host=%s
ext_stun_port=3478
secure_mode=yes
system_uptime=yes
uuid=%s
allow 1024-65535 %s 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`, UPnPPort, ServerIP1, uuid(), s.lanNet4)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return l.spawn(s.Router, "miniupnpd"+s.Name, "miniupnpd", "-f", conf, "-d", "-P", filepath.Join(l.Dir, "miniupnpd"+s.Name+".pid"))
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// readyPoll is how often a starting server is checked: they come up in
// tens of milliseconds.
const readyPoll = 10 * time.Millisecond

// waitTCP waits until something accepts TCP connections at addr, seen from
// namespace ns, or p dies.
func waitTCP(ctx context.Context, ns string, addr netip.AddrPort, p *proc) error {
	for {
		err := netns.Do(ns, func() error {
			c, err := net.DialTimeout("tcp", addr.String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
		if perr := p.exited(); perr != nil {
			return perr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never listened on tcp %s: %w", p.name, addr, err)
		case <-time.After(readyPoll):
		}
	}
}

// waitUDP waits until a UDP socket listens on port in namespace ns.
func waitUDP(ctx context.Context, ns string, port uint16, p *proc) error {
	for {
		out, err := netns.Exec(ctx, ns, "ss", "-Hlun", fmt.Sprintf("sport = :%d", port))
		if err == nil && strings.TrimSpace(string(out)) != "" {
			return nil
		}
		if perr := p.exited(); perr != nil {
			return perr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never listened on udp port %d", p.name, port)
		case <-time.After(readyPoll):
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
