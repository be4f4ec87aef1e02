package netif

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Route flags from linux/route.h.
const (
	rtfUp     = 0x0001
	rtfReject = 0x0200
)

// procNet is the calling thread's view of /proc/net: /proc/net itself follows
// the process's main thread, which may sit in another network namespace.
func procNet(name string) string {
	if _, err := os.Stat("/proc/thread-self/net"); err == nil {
		return "/proc/thread-self/net/" + name
	}
	return "/proc/net/" + name
}

func defaultRoutes() ([]defaultRoute, error) {
	var out []defaultRoute
	for _, src := range []struct {
		file  string
		parse func(io.Reader) ([]defaultRoute, error)
	}{{"route", parseRoute4}, {"ipv6_route", parseRoute6}} {
		f, err := os.Open(procNet(src.file))
		if os.IsNotExist(err) {
			continue // IPv6 disabled in this kernel or namespace
		}
		if err != nil {
			return nil, err
		}
		routes, err := src.parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.file, err)
		}
		out = append(out, routes...)
	}
	sortDefaults(out)
	return out, nil
}

// parseRoute4 reads /proc/net/route:
//
//	Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
//	eth0  00000000    0102A8C0 0003 0      0   100    00000000 ...
//
// with addresses as hex in host (little-endian) byte order.
func parseRoute4(r io.Reader) ([]defaultRoute, error) {
	var out []defaultRoute
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if line == 0 || len(f) < 8 {
			continue // header
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		gw, err2 := strconv.ParseUint(f[2], 16, 32)
		flags, err3 := strconv.ParseUint(f[3], 16, 32)
		metric, err4 := strconv.ParseUint(f[6], 10, 32)
		mask, err5 := strconv.ParseUint(f[7], 16, 32)
		if err := firstErr(err1, err2, err3, err4, err5); err != nil {
			return nil, fmt.Errorf("line %d: %w", line+1, err)
		}
		if dst != 0 || mask != 0 || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		var d defaultRoute
		d.family, d.iface, d.metric = IPv4, f[0], uint32(metric)
		if gw != 0 {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(gw))
			d.gateway = netip.AddrFrom4(b)
		}
		out = append(out, d)
	}
	return out, sc.Err()
}

// parseRoute6 reads /proc/net/ipv6_route:
//
//	dst dst_len src src_len next_hop metric refcnt use flags iface
//
// with addresses as 32 hex digits and numbers in hex.
func parseRoute6(r io.Reader) ([]defaultRoute, error) {
	var out []defaultRoute
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		dst, err1 := hex16(f[0])
		plen, err2 := strconv.ParseUint(f[1], 16, 8)
		gw, err3 := hex16(f[4])
		metric, err4 := strconv.ParseUint(f[5], 16, 32)
		flags, err5 := strconv.ParseUint(f[8], 16, 32)
		if err := firstErr(err1, err2, err3, err4, err5); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if !netip.AddrFrom16(dst).IsUnspecified() || plen != 0 || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		d := defaultRoute{family: IPv6, iface: f[9], metric: uint32(metric)}
		if g := netip.AddrFrom16(gw); !g.IsUnspecified() {
			if g.IsLinkLocalUnicast() {
				g = g.WithZone(d.iface)
			}
			d.gateway = g
		}
		out = append(out, d)
	}
	return out, sc.Err()
}

func hex16(s string) ([16]byte, error) {
	var b [16]byte
	if len(s) != 32 {
		return b, fmt.Errorf("address %q is not 32 hex digits", s)
	}
	_, err := hex.Decode(b[:], []byte(s))
	return b, err
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
