package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/stun"
)

// natIn runs `p2pd nat` (this test binary as p2pd) in a lab host with the
// lab's servers, or with cfg if not nil, and returns its output (and the
// report, for --json).
func natIn(t testing.TB, l *natlab.Lab, site *natlab.Site, cfgName string, cfg any, extra ...string) (*netcheck.Report, string) {
	t.Helper()
	path, err := l.WriteNodeConfig(cfgName, l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		data, _ := json.Marshal(cfg)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--", "nat", "--config", path}, extra...)
	cmd := l.Command(ctx, site.Host, os.Args[0], args...)
	cmd.Env = append(cmd.Env, "P2PD_RUN_MAIN=1", "HOME="+os.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("p2pd nat: %v\n%s", err, stderr.String())
	}
	if !slices.Contains(extra, "--json") {
		return nil, stdout.String()
	}
	var r netcheck.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("p2pd nat --json printed %q: %v", stdout.String(), err)
	}
	return &r, stdout.String()
}

func TestNatReportInLab(t *testing.T) {
	l := natlab.New(t, natlab.Config{
		A:    natlab.NAT{Unsolicited: natlab.Accept}, // EIM+APDF with a working miniupnpd
		B:    natlab.NAT{Mapping: natlab.MapAPDM},
		TURN: true, MQTT: true, NTP: true, NTPOffset: 2500 * time.Millisecond, UPnPA: true,
	})
	r, _ := natIn(t, l, l.A, "a", nil, "--json")
	t.Logf("report A took %v: %s", r.Took, r.Verdict)
	if len(r.Interfaces) != 1 || r.Interfaces[0].Name != "eth0" || len(r.Interfaces[0].Families) != 2 {
		t.Fatalf("interfaces = %+v", r.Interfaces)
	}
	v4 := r.Interfaces[0].Families[0]
	if v4.NATType != stun.TypePortRestricted || v4.Profile.External.Addr() != l.A.WAN4 || !v4.Profile.PreservesPorts() {
		t.Errorf("IPv4 = %+v", v4)
	}
	if pm := r.PortMapping; pm == nil || !pm.Worked || !pm.Gateway.NATPMP || !pm.Gateway.UPnP {
		t.Errorf("port mapping = %+v, want both protocols and a working mapping", pm)
	}
	if r.Clock == nil || (r.Clock.Offset-2500*time.Millisecond).Abs() > 50*time.Millisecond {
		t.Errorf("clock = %+v, want the lab's +2.5 s responder", r.Clock)
	}
	for _, s := range r.Servers {
		if !s.OK {
			t.Errorf("server %s %s failed: %s", s.Kind, s.Server, s.Error)
		}
		if s.Kind == "turn" && !s.TCPRelay {
			t.Errorf("the lab's coturn relays TCP, the check says not: %+v", s)
		}
	}
	if kinds := serverKinds(r); kinds != "mqtt ntp stun turn" {
		t.Errorf("servers checked: %s", kinds)
	}
	if routes := r.Interfaces[0].Routes; len(routes) == 0 || len(routes[0].External) == 0 || routes[0].External[0] != l.A.WAN4 {
		t.Errorf("IPv4 route's external address: %+v", routes)
	}
	if !strings.Contains(r.Verdict, "port-restricted") || !strings.Contains(r.Verdict, "opens ports on request") {
		t.Errorf("verdict %q", r.Verdict)
	}

	// Behind a symmetric NAT without port mapping; the text form.
	_, text := natIn(t, l, l.B, "b", nil)
	t.Logf("p2pd nat on host B:\n%s", text)
	for _, want := range []string{"symmetric", "random", "Port mapping on router 10\\.0\\.2\\.1: neither NAT-PMP nor UPnP answered", `Clock: 2\.(49|5)\d*s behind true time`, "ok  ", `turn .*relays TCP too`} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

func serverKinds(r *netcheck.Report) string {
	var kinds []string
	for _, s := range r.Servers {
		if !slices.Contains(kinds, s.Kind) {
			kinds = append(kinds, s.Kind)
		}
	}
	slices.Sort(kinds)
	return strings.Join(kinds, " ")
}

// TestNatReportSurvivesDeadServers lists a STUN server that never answers,
// an MQTT broker that is down and an NTP host that does not exist next to
// live ones: the report completes within its budget and names each failure.
func TestNatReportSurvivesDeadServers(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true, MQTT: true, NTP: true})
	silent := natlab.SilentIP.String()
	cfg := map[string]any{
		"stun": []string{"udp://" + silent + ":3478", "udp://203.0.113.1:3478", "tcp://203.0.113.1:3478"},
		"mqtt": []string{"tcp://" + silent + ":1883", "tcp://203.0.113.1:1884", "tcp://203.0.113.1:1883"},
		"turn": []map[string]string{{"url": "turn:" + silent + ":3478", "user": "test", "pass": "test", "realm": "natlab"}},
		"ntp":  []string{silent, "203.0.113.1"},
	}
	r, _ := natIn(t, l, l.A, "dead", cfg, "--json")
	if r.Took > netcheck.DefaultBudget+500*time.Millisecond {
		t.Errorf("report took %v, budget %v", r.Took, netcheck.DefaultBudget)
	}
	failed := map[string]bool{}
	for _, s := range r.Servers {
		if !s.OK {
			failed[s.Kind+" "+s.Server] = true
		}
	}
	for _, want := range []string{"stun udp://" + silent + ":3478", "mqtt tcp://" + silent + ":1883", "mqtt tcp://203.0.113.1:1884", "turn turn:" + silent + ":3478", "ntp " + silent + ":123"} {
		if !failed[want] {
			t.Errorf("failure of %s not reported (failed: %v)", want, failed)
		}
	}
	if r.Interfaces[0].Families[0].NATType != stun.TypePortRestricted {
		t.Errorf("live servers did not produce a profile: %+v", r.Interfaces[0].Families[0])
	}
	if r.Clock == nil || r.Clock.Error != "" {
		t.Errorf("clock: %+v, want an offset from the live server", r.Clock)
	}
	t.Logf("report with dead servers took %v", r.Took)
}

// TestNatReportWithoutUDP: from a network that lets no UDP out (but NTP),
// the report says the TURN server relays over TCP only, and `p2pd nat`
// prints so.
func TestNatReportWithoutUDP(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true, MQTT: true, NTP: true})
	firewall(t, l, l.A.Router, `iifname "lan" oifname "wan" udp dport != 123 drop`)
	r, _ := natIn(t, l, l.A, "noudp", nil, "--json")
	var turn []netcheck.ServerOutcome
	for _, s := range r.Servers {
		if s.Kind == "turn" {
			turn = append(turn, s)
		}
	}
	if len(turn) != 1 || !turn[0].OK || !turn[0].TCPRelay || turn[0].NoUDP == "" || turn[0].RTT <= 0 {
		t.Errorf("the TURN server from a network without UDP: %+v", turn)
	}
	if _, text := natIn(t, l, l.A, "noudp", nil); !strings.Contains(text, "relays TCP only (UDP: ") {
		t.Errorf("p2pd nat does not say the relay works over TCP only:\n%s", text)
	}
}

// BenchmarkNatReport times the full `p2pd nat` report (a fresh process,
// every check) against coturn's turnutils_natdiscovery -m -f (mapping and
// filtering only) from the same host of the same lab, alternating.
func BenchmarkNatReport(b *testing.B) {
	l := natlab.New(b, natlab.Config{TURN: true, MQTT: true, NTP: true})
	var ours, theirs time.Duration
	for range b.N {
		start := time.Now()
		natIn(b, l, l.A, "bench", nil, "--json")
		ours += time.Since(start)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start = time.Now()
		_, _, err := l.NatDiscovery(ctx, l.A.Host)
		theirs += time.Since(start)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "p2pd-nat-ms")
	b.ReportMetric(float64(theirs.Milliseconds())/float64(b.N), "turnutils-ms")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speedup")
}
