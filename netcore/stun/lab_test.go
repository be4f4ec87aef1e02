package stun

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
)

func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{
		// discover profiles the NAT from args[0] with the servers in args[1:].
		"discover": func(args []string) error {
			local := netip.MustParseAddr(args[0])
			c := config.Config{STUN: args[1:]}
			eps, err := c.STUNEndpoints()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			servers, _ := Resolve(ctx, eps)
			start := time.Now()
			p, res, err := Discover(ctx, local, servers)
			if err != nil {
				return err
			}
			return json.NewEncoder(os.Stdout).Encode(childProfile{p, res, time.Since(start)})
		},
		// stale sends one datagram from every port args[0]..args[1] of
		// local address args[2] to each of args[3:], as earlier processes'
		// sockets would have: the NAT keeps a flow for each.
		"stale": func(args []string) error {
			lo, hi := mustAtoi(args[0]), mustAtoi(args[1])
			local := netip.MustParseAddr(args[2])
			for port := lo; port <= hi; port++ {
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(port))))
				if err != nil {
					return err
				}
				for _, to := range args[3:] {
					if _, err := c.WriteToUDPAddrPort([]byte("hello"), netip.MustParseAddrPort(to)); err != nil {
						c.Close()
						return err
					}
				}
				c.Close()
			}
			return nil
		},
	})
	os.Exit(m.Run())
}

type childProfile struct {
	Profile *Profile
	Servers []ServerResult
	Took    time.Duration
}

// labServers are the lab's STUN servers as a node's config lists them.
var labServers = []string{"udp://203.0.113.1:3478", "tcp://203.0.113.1:3478", "udp://[fd00:64::1]:3478", "tcp://[fd00:64::1]:3478"}

func discoverIn(t *testing.T, l *natlab.Lab, site *natlab.Site, local netip.Addr) childProfile {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := l.Run(ctx, site.Host, "discover", append([]string{local.String()}, labServers...)...)
	if err != nil {
		t.Fatal(err)
	}
	var cp childProfile
	if err := json.Unmarshal(out, &cp); err != nil {
		t.Fatalf("discover printed %q: %v", out, err)
	}
	return cp
}

// TestDiscoveryAgreesWithCoturn profiles every lab preset and compares the
// mapping and filtering verdicts with coturn's turnutils_natdiscovery, run
// from the same host; the port allocation must match what the router does.
func TestDiscoveryAgreesWithCoturn(t *testing.T) {
	natlab.Require(t)
	presets := natlab.Matrix()
	for i := 0; i < len(presets); i += 2 {
		pair := presets[i:min(i+2, len(presets))]
		t.Run(pair[0].String(), func(t *testing.T) {
			t.Parallel()
			cfg := natlab.Config{A: pair[0], TURN: true}
			if len(pair) > 1 {
				cfg.B = pair[1]
			}
			l := natlab.New(t, cfg)
			var wg sync.WaitGroup
			for i, site := range l.Sites()[:len(pair)] {
				nat := pair[i]
				wg.Go(func() {
					ours := discoverIn(t, l, site, site.Host4)
					p := ours.Profile
					got := p.Mapping.Short("M") + "+" + p.Filtering.Short("F")
					truth := trueMapping[nat.Mapping] + "+" + nat.Filtering.String()
					if got != truth {
						t.Errorf("%v: we say %s, the router does %s", nat, got, truth)
					}
					// coturn's tool now and then misreads a router that
					// maps to random ports (ADM for APDM, seen once in
					// CI): it gets three tries to agree.
					var theirs []string
					for range 3 {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						m, f, err := l.NatDiscovery(ctx, site.Host)
						cancel()
						if err != nil {
							t.Errorf("%v: %v", nat, err)
							return
						}
						if theirs = append(theirs, m+"+"+f); m+"+"+f == got {
							break
						}
					}
					if theirs[len(theirs)-1] != got {
						t.Errorf("%v: we say %s, turnutils_natdiscovery says %v", nat, got, theirs)
					}
					t.Logf("%v: %s, type %v, UDP ports %v, TCP ports %v, TCP mapping %v, hairpin %v, in %v",
						nat, got, p.Type(), p.UDPPorts, p.TCPPorts, p.TCPMapping.Short("M"), p.Hairpin, ours.Took.Round(time.Millisecond))
					checkProfile(t, nat, site, p)
				})
			}
			wg.Wait()
		})
	}
}

// trueMapping is what RFC 5780 profiling must find for each of the lab's
// mappings (the port allocation aside; no translation maps
// endpoint-independently).
var trueMapping = map[natlab.Mapping]string{
	natlab.MapEIM: "EIM", natlab.MapEIMRandom: "EIM", natlab.MapADM: "ADM",
	natlab.MapAPDM: "APDM", natlab.MapAPDMSequential: "APDM", natlab.MapNone: "EIM",
}

// checkProfile checks what turnutils does not report: translation, port
// allocation, TCP and hairpinning.
func checkProfile(t *testing.T, nat natlab.NAT, site *natlab.Site, p *Profile) {
	t.Helper()
	wantExternal := site.WAN4
	if nat.Mapping == natlab.MapNone {
		wantExternal = site.Host4
	}
	if p.External.Addr() != wantExternal || p.NAT != (nat.Mapping != natlab.MapNone) || !p.UDP || !p.TCP {
		t.Errorf("%v: external %v (NAT %v, UDP %v, TCP %v), want %v behind NAT=%v over UDP and TCP",
			nat, p.External, p.NAT, p.UDP, p.TCP, wantExternal, nat.Mapping != natlab.MapNone)
	}
	// The lab's routers do not hairpin; a host without NAT reaches its own
	// address directly.
	if wantHairpin := map[bool]Tri{true: No, false: Yes}[p.NAT]; p.Hairpin != wantHairpin {
		t.Errorf("%v: hairpin %v, want %v", nat, p.Hairpin, wantHairpin)
	}
	wantPorts := map[natlab.Mapping]Delta{
		natlab.MapEIM:            DeltaEqual,
		natlab.MapNone:           DeltaEqual,
		natlab.MapEIMRandom:      DeltaRandom,
		natlab.MapADM:            DeltaRandom,
		natlab.MapAPDM:           DeltaRandom,
		natlab.MapAPDMSequential: DeltaIndependent,
	}[nat.Mapping]
	for proto, pp := range map[string]PortPattern{"UDP": p.UDPPorts, "TCP": p.TCPPorts} {
		if pp.Kind != wantPorts || (wantPorts == DeltaIndependent && pp.Step != 1) {
			t.Errorf("%v: %s port allocation %v %v, want %v", nat, proto, pp, pp.Samples, wantPorts)
		}
	}
	wantTCP, _ := nat.RFC4787()
	if p.TCPMapping.Short("M") != wantTCP {
		t.Errorf("%v: TCP mapping %v, want %s", nat, p.TCPMapping, wantTCP)
	}
	if nat.Mapping == natlab.MapEIM && !p.PreservesPorts() {
		t.Errorf("%v: port preservation not seen", nat)
	}
}

// TestDiscoveryIPv6 profiles the routed IPv6 path: no translation, and a
// stateful firewall that filters per address and port.
func TestDiscoveryIPv6(t *testing.T) {
	l := natlab.New(t, natlab.Config{A: natlab.NAT{}, B: natlab.NAT{IPv6Open: true}, TURN: true})
	for _, tc := range []struct {
		site *natlab.Site
		want Behaviour
		typ  NATType
	}{{l.A, AddressPortDependent, TypeFirewall}, {l.B, EndpointIndependent, TypeOpen}} {
		p := discoverIn(t, l, tc.site, tc.site.Host6).Profile
		if p.NAT || p.External.Addr() != tc.site.Host6 || p.Filtering != tc.want || p.Type() != tc.typ {
			t.Errorf("site %s IPv6: NAT %v external %v filtering %v type %v; want no NAT, %v, %v, %v",
				tc.site.Name, p.NAT, p.External, p.Filtering, p.Type(), tc.site.Host6, tc.want, tc.typ)
		}
	}
}

// TestFilteringIgnoresStaleFlows: every ephemeral port of the host has
// just sent to the server's alternate address and port (as earlier
// processes' mapping tests do), so the NAT holds a flow that admits the
// alternate address's answer on each of them. Filtering is still judged
// address-and-port dependent: its probes use ports no mapping test does.
func TestFilteringIgnoresStaleFlows(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const lo, hi = 50000, 50199
	if _, err := l.Exec(ctx, l.A.Host, "sysctl", "-qw", fmt.Sprintf("net.ipv4.ip_local_port_range=%d %d", lo, hi)); err != nil {
		t.Fatal(err)
	}
	alt := []string{netip.AddrPortFrom(natlab.ServerIP2, 3479).String(), netip.AddrPortFrom(natlab.ServerIP1, 3479).String()}
	if _, err := l.Run(ctx, l.A.Host, "stale", append([]string{fmt.Sprint(lo), fmt.Sprint(hi), l.A.Host4.String()}, alt...)...); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p := discoverIn(t, l, l.A, l.A.Host4).Profile
		if p.Mapping != EndpointIndependent || p.Filtering != AddressPortDependent {
			t.Errorf("discovery %d with stale flows on every ephemeral port: %v+%v, want EIM+APDF", i, p.Mapping.Short("M"), p.Filtering.Short("F"))
		}
	}
}

// TestDeadServerDoesNotStall lists a STUN server that never answers first:
// discovery still finishes quickly with the live one and names the dead one.
func TestDeadServerDoesNotStall(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	silent := netip.AddrPortFrom(natlab.SilentIP, 3478).String()
	out, err := l.Run(ctx, l.A.Host, "discover", l.A.Host4.String(), "udp://"+silent, "tcp://"+silent, "udp://203.0.113.1:3478", "tcp://203.0.113.1:3478")
	if err != nil {
		t.Fatal(err)
	}
	var cp childProfile
	if err := json.Unmarshal(out, &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Profile.Mapping != EndpointIndependent || cp.Profile.Filtering != AddressPortDependent {
		t.Errorf("with a dead server listed: %v+%v", cp.Profile.Mapping, cp.Profile.Filtering)
	}
	var dead []string
	for _, r := range cp.Servers {
		if !r.OK {
			dead = append(dead, r.Server)
		}
	}
	if fmt.Sprint(dead) != "[udp://203.0.113.9:3478 tcp://203.0.113.9:3478]" {
		t.Errorf("failed servers = %v, want the two dead ones", dead)
	}
	t.Logf("discovery with a dead server took %v", cp.Took)
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
