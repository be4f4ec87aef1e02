package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/netcheck"
)

func cmdNat(args []string, stdout io.Writer) error {
	fs := newFlags("nat", stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	cfgPath := fs.String("config", "", "config file (default: $P2PD_CONFIG, else the public servers)")
	budget := fs.Duration("budget", netcheck.DefaultBudget, "time limit for the whole report")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *budget <= 0 {
		return usageError{"--budget must be positive"}
	}
	cfg, err := config.Resolve(*cfgPath)
	if err != nil {
		return err
	}
	r := netcheck.Run(context.Background(), cfg, netcheck.Options{Budget: *budget})
	if *asJSON {
		return writeJSON(stdout, r)
	}
	return printReport(stdout, r)
}

func printReport(w io.Writer, r *netcheck.Report) error {
	fmt.Fprintf(w, "%s\n\n", wrap(r.Verdict, 78))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, i := range r.Interfaces {
		name := i.Name
		if i.Default {
			name += " (default)"
		}
		fmt.Fprintf(tw, "%s\n", name)
		for _, f := range i.Families {
			if f.Profile == nil {
				fmt.Fprintf(tw, "  %v %v\tno answer: %s\n", f.Family, f.Local, f.Error)
				continue
			}
			p := f.Profile
			ext := "?"
			switch {
			case p.External.IsValid():
				ext = p.External.String()
			case p.TCPExternal.IsValid():
				ext = p.TCPExternal.String() + " (TCP)"
			}
			fmt.Fprintf(tw, "  %v %v -> %s\t%v\n", f.Family, f.Local, ext, f.NATType)
			if p.NAT || f.Family == 4 {
				fmt.Fprintf(tw, "    mapping\t%v\n", p.Mapping)
			}
			fmt.Fprintf(tw, "    filtering\t%v\n", p.Filtering)
			fmt.Fprintf(tw, "    hairpinning\t%v\n", p.Hairpin)
			fmt.Fprintf(tw, "    UDP ports\t%v\n", p.UDPPorts)
			if p.TCP {
				fmt.Fprintf(tw, "    TCP\t%v, mapping %v, ports %v\n", p.TCPExternal, p.TCPMapping, p.TCPPorts)
			} else {
				fmt.Fprintf(tw, "    TCP\tno STUN server answered over TCP\n")
			}
		}
	}
	tw.Flush()
	if pm := r.PortMapping; pm != nil {
		fmt.Fprintf(w, "\nPort mapping on router %v: %s", pm.Gateway.Addr, offeredText(pm))
		switch {
		case pm.Worked:
			fmt.Fprintf(w, "; a test mapping worked (%s, %v)\n", pm.Method, pm.External)
		case pm.Tried:
			fmt.Fprintf(w, "; a test mapping failed: %s\n", flatten(errorText(pm.Error)))
		default:
			fmt.Fprintln(w)
		}
	}
	if c := r.Clock; c != nil {
		if c.Error != "" {
			fmt.Fprintf(w, "\nClock: not measured (%s)\n", c.Error)
		} else {
			fmt.Fprintf(w, "\nClock: %s (NTP)\n", clockText(c.Offset))
		}
	}
	fmt.Fprintln(w, "\nServers:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range r.Servers {
		if s.OK {
			tcp := ""
			switch {
			case s.NoUDP != "":
				tcp = "\trelays TCP only (UDP: " + flatten(errorText(s.NoUDP)) + ")"
			case s.TCPRelay:
				tcp = "\trelays TCP too"
			}
			fmt.Fprintf(tw, "  ok\t%s\t%s\t%v%s\n", s.Kind, s.Server, s.RTT.Round(time.Millisecond/10), tcp)
		} else {
			fmt.Fprintf(tw, "  FAILED\t%s\t%s\t%s\n", s.Kind, s.Server, flatten(errorText(s.Error)))
		}
	}
	tw.Flush()
	_, err := fmt.Fprintf(w, "\nChecked in %v.\n", r.Took.Round(time.Millisecond))
	return err
}

func offeredText(pm *netcheck.PortMapping) string {
	var p []string
	if pm.Gateway.NATPMP {
		p = append(p, "NAT-PMP")
	}
	if pm.Gateway.UPnP {
		p = append(p, "UPnP")
	}
	if len(p) == 0 {
		return "neither NAT-PMP nor UPnP answered"
	}
	return strings.Join(p, " and ") + " answered"
}

func clockText(d time.Duration) string {
	d = d.Round(time.Millisecond)
	switch {
	case d.Abs() < 5*time.Millisecond:
		return "accurate"
	case d > 0:
		return fmt.Sprintf("%v behind true time", d)
	}
	return fmt.Sprintf("%v ahead of true time", -d)
}

func errorText(s string) string {
	if len(s) > 160 {
		return s[:157] + "..."
	}
	return s
}

// wrap breaks text into lines of at most width columns.
func wrap(text string, width int) string {
	var b strings.Builder
	line := 0
	for _, word := range strings.Fields(text) {
		if line > 0 && line+1+len(word) > width {
			b.WriteByte('\n')
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}
