package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"p2pd/netcore/netif"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdVersion(args []string, stdout io.Writer) error {
	fs := newFlags("version", stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	info := struct {
		Version string `json:"version"`
		Go      string `json:"go"`
		OS      string `json:"os"`
		Arch    string `json:"arch"`
	}{version, runtime.Version(), runtime.GOOS, runtime.GOARCH}
	if *asJSON {
		return writeJSON(stdout, info)
	}
	_, err := fmt.Fprintf(stdout, "p2pd %s (%s, %s/%s)\n", info.Version, info.Go, info.OS, info.Arch)
	return err
}

func cmdIfs(args []string, stdout io.Writer) error {
	fs := newFlags("ifs", stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	loopback := fs.Bool("loopback", false, "count loopback interfaces as usable for LAN traffic")
	if err := parse(fs, args); err != nil {
		return err
	}
	ifs, err := netif.List(netif.Options{Loopback: *loopback})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, ifs)
	}
	return printIfs(stdout, ifs)
}

// printIfs renders interfaces for people: one block per interface with its
// flags, addresses and routes.
func printIfs(w io.Writer, ifs []netif.Interface) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, i := range ifs {
		var flags []string
		if i.Up {
			flags = append(flags, "up")
		} else {
			flags = append(flags, "down")
		}
		if i.Loopback {
			flags = append(flags, "loopback")
		}
		if i.LAN {
			flags = append(flags, "LAN")
		}
		if i.WAN {
			flags = append(flags, "WAN")
		}
		for _, d := range []struct {
			on bool
			f  netif.Family
			gw fmt.Stringer
		}{{i.Default4, netif.IPv4, i.Gateway4}, {i.Default6, netif.IPv6, i.Gateway6}} {
			if d.on {
				s := "default " + d.f.String()
				if gw := d.gw.String(); gw != "invalid IP" {
					s += " via " + gw
				}
				flags = append(flags, s)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", i.Name, strings.Join(flags, ", "))
		for _, a := range i.Addrs {
			fmt.Fprintf(tw, "  %s\t%s\n", a, a.Scope())
		}
		for _, r := range i.Routes {
			fmt.Fprintf(tw, "  route %v\t%s -> %s\n", r.Family, addrList(r.NIC, "link-local only"), addrList(r.External, "external address unknown (found by STUN)"))
		}
	}
	return tw.Flush()
}

func addrList[T fmt.Stringer](as []T, empty string) string {
	if len(as) == 0 {
		return empty
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
