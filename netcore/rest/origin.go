package rest

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// checkOrigin refuses requests a web page could make the browser send:
// a Host that is not a loopback name (DNS rebinding points a name the
// page controls at 127.0.0.1), or an Origin other than none, "null" (a
// local file) or a loopback one.
func checkOrigin(r *http.Request) error {
	if !loopbackHost(r.Host) {
		return fmt.Errorf("refused: Host %q is not a loopback name (127.0.0.1, localhost or [::1])", r.Host)
	}
	origin := r.Header.Get("Origin")
	// A browser says where a request comes from in Sec-Fetch-Site; one
	// from another site without an Origin (an <img>, a link) is a page
	// trying to drive the API blind.
	if site := r.Header.Get("Sec-Fetch-Site"); origin == "" && site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("refused: a request from another site (Sec-Fetch-Site: %s) without an Origin", site)
	}
	switch origin {
	case "", "null":
		return nil
	default:
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || !loopbackHost(u.Host) || u.Path != "" {
			return fmt.Errorf("refused: requests from web pages at %q may not use this API", origin)
		}
	}
	return nil
}

// loopbackHost reports whether hostport names this computer by its
// loopback name, with any port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	switch strings.ToLower(host) {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}
