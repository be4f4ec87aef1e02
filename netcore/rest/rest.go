// Package rest serves a node over a local HTTP API shaped like the seed
// library's (P2PD's REST API), so programs in any language can drive the
// engine: open named connections to other nodes, send and receive
// messages (text or binary), subscribe to messages by pattern, or turn
// the HTTP connection itself into a plain two-way socket to a peer.
//
// Every path works with and without the "/p2p" prefix. Responses are
// JSON with an integer "error" field (0: ok) and, on errors, "msg":
//
//	GET  /version                          title, author, version
//	GET  /p2p/addr                         this node's address
//	GET  /p2p/ifs                          interfaces and routes
//	GET  /p2p/nat                          the NAT diagnostics report
//	GET  /p2p/open/<name>/<addr or self>   connect; the name is the handle
//	GET  /p2p/send/<name>/<text>           send a text message (URL-encoded)
//	GET  /p2p/recv/<name>[/timeout/<s>]    the next message (error if none in time)
//	POST /p2p/binary/<name>                send the body's raw bytes
//	GET  /p2p/binary/<name>                the next message as raw bytes
//	GET  /p2p/pipe/<name>                  the connection becomes a raw relay
//	GET  /p2p/sub/<name>/msg_p/<re>/addr_p/<re>    subscribe
//	GET  /p2p/recv/<name>/msg_p/<re>/addr_p/<re>   receive from that queue
//	DELETE /p2p/sub/<name>[/msg_p/<re>/addr_p/<re>] unsubscribe
//
// A subscription's patterns are regular expressions, as in the seed: the
// message's, and the sender's "ip:port"; blank matches everything.
//
//	GET  /p2p/close/<name>, /p2p/cons      close one, list them
//
// The API is for programs on this computer: it refuses requests whose
// Host is not a loopback name (DNS rebinding) and browser requests from
// any origin other than "null" (a local file) or a loopback one.
package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
	"p2pd/netcore/node"
	"p2pd/netcore/pipe"
	"p2pd/netcore/session"
)

const (
	// DefaultPort is where the seed library's REST API listens.
	DefaultPort = 12333
	// maxBody bounds a binary message sent with POST.
	maxBody = 1 << 20
	// maxName bounds a connection name.
	maxName = 64
	// openTimeout bounds /open: every strategy has had its chance by then.
	openTimeout = 20 * time.Second
	// recvTimeout is how long /recv waits when the path names no timeout.
	recvTimeout = 2 * time.Second
	// maxRecvTimeout caps a requested timeout.
	maxRecvTimeout = 5 * time.Minute
)

// Options configure a server.
type Options struct {
	// Title, Author and Version are what /version reports.
	Title, Author, Version string
	// Logger receives the server's log (default slog.Default()).
	Logger *slog.Logger
}

// Server serves the API for one node.
type Server struct {
	n   *node.Node
	opt Options
	log *slog.Logger

	mu   sync.Mutex
	cons map[string]*con
	done bool
}

// con is a named connection.
type con struct {
	name string
	sess *session.Session
	p    *pipe.Pipe
	info reply               // what /open and /cons report of it
	subs map[string]pipe.Sub // by "msg_p\x00addr_p"
}

// New returns a server for n.
func New(n *node.Node, opt Options) *Server {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{n: n, opt: opt, log: log, cons: map[string]*con{}}
}

// Close closes every connection opened through the API.
func (s *Server) Close() error {
	s.mu.Lock()
	cons := s.cons
	s.cons = map[string]*con{}
	s.done = true
	s.mu.Unlock()
	for _, c := range cons {
		c.close()
	}
	return nil
}

func (c *con) close() {
	c.p.Close()
	c.sess.Close()
}

// apiError is an error response: its HTTP status and message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, format string, args ...any) error {
	return &apiError{status, fmt.Sprintf(format, args...)}
}

// reply is a JSON response body; "error" is added.
type reply map[string]any

// ServeHTTP checks where the request comes from and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := checkOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, reply{"error": 1, "msg": err.Error()})
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	segs, err := segments(r.URL)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, reply{"error": 1, "msg": err.Error()})
		return
	}
	out, err := s.route(w, r, segs)
	if err != nil {
		status := http.StatusInternalServerError
		var ae *apiError
		if errors.As(err, &ae) {
			status = ae.status
		}
		writeJSON(w, status, reply{"error": 1, "msg": err.Error()})
		return
	}
	if out != nil {
		out["error"] = 0
		writeJSON(w, http.StatusOK, out)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// segments splits the path into its URL-decoded parts, without the
// optional "p2p" prefix.
func segments(u *url.URL) ([]string, error) {
	// Only the leading slash goes: a trailing one ends an empty last
	// part ("addr_p/": any sender).
	raw := strings.TrimPrefix(u.EscapedPath(), "/")
	if raw == "" {
		return nil, nil
	}
	parts := strings.Split(raw, "/")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		d, err := url.PathUnescape(p)
		if err != nil {
			return nil, fmt.Errorf("the path part %q is not valid URL encoding: %w", p, err)
		}
		out = append(out, d)
	}
	if out[0] == "p2p" {
		out = out[1:]
	}
	return out, nil
}

// route runs the endpoint segs names; a nil reply with no error means
// the endpoint wrote its own response.
func (s *Server) route(w http.ResponseWriter, r *http.Request, segs []string) (reply, error) {
	if len(segs) == 0 {
		return nil, fail(http.StatusNotFound, "no endpoint here: see /version, /p2p/addr, /p2p/open/<name>/<addr>")
	}
	method := r.Method
	get := method == http.MethodGet || method == http.MethodHead
	switch ep, args := segs[0], segs[1:]; {
	case ep == "version" && get:
		return reply{"title": s.opt.Title, "author": s.opt.Author, "version": s.opt.Version}, nil
	case ep == "addr" && get:
		text, err := s.n.Address().Encode()
		if err != nil {
			return nil, err
		}
		return reply{"addr": text}, nil
	case ep == "ifs" && get:
		ifs, err := netif.List(netif.Options{})
		if err != nil {
			return nil, err
		}
		return reply{"ifs": ifs}, nil
	case ep == "nat" && get:
		return reply{"nat": netcheck.Run(r.Context(), s.n.Config(), netcheck.Options{})}, nil
	case ep == "open" && get:
		return s.open(r.Context(), args)
	case ep == "send" && get:
		return s.send(r.Context(), args)
	case ep == "recv" && get:
		return s.recv(r.Context(), args)
	case ep == "binary" && method == http.MethodPost:
		return s.sendBinary(r, args)
	case ep == "binary" && get:
		return nil, s.recvBinary(w, r, args)
	case ep == "pipe" && get:
		return nil, s.pipe(w, r, args)
	case ep == "sub" && get:
		return s.subscribe(args, true)
	case ep == "sub" && method == http.MethodDelete:
		return s.subscribe(args, false)
	case ep == "close" && get:
		return s.closeCon(args)
	case ep == "cons" && get:
		return s.list(), nil
	}
	return nil, fail(http.StatusNotFound, "no endpoint %s /%s", method, strings.Join(segs, "/"))
}

// con returns the connection named by args[0].
func (s *Server) con(args []string) (*con, error) {
	if len(args) == 0 || args[0] == "" {
		return nil, fail(http.StatusBadRequest, "the path names no connection")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cons[args[0]]
	if c == nil {
		return nil, fail(http.StatusNotFound, "no connection named %q (open it first: /p2p/open/%s/<addr>)", args[0], args[0])
	}
	return c, nil
}

func (s *Server) open(ctx context.Context, args []string) (reply, error) {
	if len(args) != 2 {
		return nil, fail(http.StatusBadRequest, "want /p2p/open/<name>/<addr or self>")
	}
	name, text := args[0], args[1]
	if name == "" || len(name) > maxName {
		return nil, fail(http.StatusBadRequest, "a connection name is 1 to %d characters", maxName)
	}
	s.mu.Lock()
	_, taken := s.cons[name]
	s.mu.Unlock()
	if taken {
		return nil, fail(http.StatusConflict, "a connection named %q is already open", name)
	}
	to := s.n.Address()
	if text != "self" {
		var err error
		if to, err = addr.Parse(text); err != nil {
			return nil, fail(http.StatusBadRequest, "%v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	res, err := s.n.Connect(ctx, to, node.ConnectOptions{})
	if err != nil {
		return nil, fail(http.StatusBadGateway, "%v", err)
	}
	p, err := node.OpenPipe(ctx, res.Session)
	if err != nil {
		res.Session.Close()
		return nil, fail(http.StatusBadGateway, "connected by %s, but the message stream failed: %v", res.Strategy, err)
	}
	c := &con{name: name, sess: res.Session, p: p, info: describe(name, res, s.n.Address()), subs: map[string]pipe.Sub{}}
	s.mu.Lock()
	if _, taken := s.cons[name]; taken || s.done {
		s.mu.Unlock()
		c.close()
		return nil, fail(http.StatusConflict, "a connection named %q was opened meanwhile", name)
	}
	s.cons[name] = c
	s.mu.Unlock()
	out := maps.Clone(c.info)
	out["events"] = res.Events
	return out, nil
}

// describe reports a connection the way the seed's /open does; mine is
// this node's address, for the route's external addresses.
func describe(name string, res *node.Result, mine *addr.Address) reply {
	local, remote := addrPortOf(res.Session.LocalAddr()), addrPortOf(res.Session.RemoteAddr())
	af := "IPv4"
	if local.Addr().Is6() {
		af = "IPv6"
	}
	ifName, offset := "", -1
	ext := []string{}
	for _, ifc := range mine.Interfaces {
		for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if ep != nil && ep.Internal == local.Addr().Unmap() && ep.External.IsValid() {
				ext = append(ext, ep.External.String())
			}
		}
	}
	if ifs, err := netif.List(netif.Options{Loopback: true}); err == nil {
		for i, ifc := range ifs {
			for _, rt := range ifc.Routes {
				if slices.Contains(rt.NIC, local.Addr().Unmap()) {
					ifName, offset = ifc.Name, i
				}
			}
		}
	}
	return reply{
		"name":      name,
		"laddr":     tuple(local),
		"raddr":     tuple(remote),
		"route":     reply{"af": af, "ext_ips": ext, "nic_ips": []string{local.Addr().Unmap().String()}},
		"if":        reply{"name": ifName, "offset": offset},
		"fd":        nil, // a secure session has no single socket to hand out
		"strategy":  res.Strategy,
		"transport": res.Session.Transport(),
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// tuple is an address as the seed's [ip, port].
func tuple(ap netip.AddrPort) []any { return []any{ap.Addr().Unmap().String(), ap.Port()} }

func (s *Server) send(ctx context.Context, args []string) (reply, error) {
	if len(args) < 2 {
		return nil, fail(http.StatusBadRequest, "want /p2p/send/<name>/<url-encoded text>")
	}
	c, err := s.con(args)
	if err != nil {
		return nil, err
	}
	// A "/" in the text arrives as a separator when not encoded: keep it.
	msg := []byte(strings.Join(args[1:], "/"))
	if err := c.p.Send(ctx, msg, netip.AddrPort{}); err != nil {
		return nil, fail(http.StatusBadGateway, "sending on %q: %v", c.name, err)
	}
	return reply{"name": c.name, "sent": len(msg)}, nil
}

// subOf parses "msg_p/<re>/addr_p/<re>" (either may be empty).
func subOf(args []string) (pipe.Sub, string, string, error) {
	if len(args) == 0 {
		return pipe.SubAll, "", "", nil
	}
	if len(args) != 4 || args[0] != "msg_p" || args[2] != "addr_p" {
		return pipe.Sub{}, "", "", fail(http.StatusBadRequest, "want msg_p/<message regex>/addr_p/<sender ip:port regex>")
	}
	sub, err := pipe.NewSubRegexp(args[1], args[3])
	if err != nil {
		return pipe.Sub{}, "", "", fail(http.StatusBadRequest, "%v", err)
	}
	return sub, args[1], args[3], nil
}

// recvArgs splits what follows /recv/<name>: a timeout, a subscription,
// or both.
func recvArgs(args []string) (time.Duration, []string, error) {
	timeout := recvTimeout
	if len(args) >= 2 && args[0] == "timeout" {
		secs, err := strconv.ParseFloat(args[1], 64)
		if err != nil || secs < 0 {
			return 0, nil, fail(http.StatusBadRequest, "timeout %q: want a number of seconds", args[1])
		}
		timeout = min(time.Duration(secs*float64(time.Second)), maxRecvTimeout)
		args = args[2:]
	}
	if len(args) >= 2 && args[len(args)-2] == "timeout" {
		secs, err := strconv.ParseFloat(args[len(args)-1], 64)
		if err != nil || secs < 0 {
			return 0, nil, fail(http.StatusBadRequest, "timeout %q: want a number of seconds", args[len(args)-1])
		}
		timeout = min(time.Duration(secs*float64(time.Second)), maxRecvTimeout)
		args = args[:len(args)-2]
	}
	return timeout, args, nil
}

// next waits for the next message of sub on c.
func (s *Server) next(ctx context.Context, c *con, sub pipe.Sub, timeout time.Duration) (pipe.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := c.p.Recv(ctx, sub)
	switch {
	case err == nil:
		return m, nil
	case errors.Is(err, context.DeadlineExceeded):
		return m, fail(http.StatusRequestTimeout, "no message on %q within %v", c.name, timeout)
	}
	return m, fail(http.StatusBadGateway, "receiving on %q: %v", c.name, err)
}

func (s *Server) recv(ctx context.Context, args []string) (reply, error) {
	c, err := s.con(args)
	if err != nil {
		return nil, err
	}
	timeout, rest, err := recvArgs(args[1:])
	if err != nil {
		return nil, err
	}
	sub, msgP, addrP, err := subOf(rest)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 && !s.subscribed(c, msgP, addrP) {
		return nil, fail(http.StatusNotFound, "no subscription msg_p %q addr_p %q on %q (subscribe first: /p2p/sub/...)", msgP, addrP, c.name)
	}
	m, err := s.next(ctx, c, sub, timeout)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	out := reply{"name": c.name, "data": string(m.Data), "client_tup": tuple(m.From)}
	if len(rest) > 0 {
		out["sub"] = []string{msgP, addrP}
	}
	return out, nil
}

func (s *Server) subscribed(c *con, msgP, addrP string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := c.subs[msgP+"\x00"+addrP]
	return ok
}

func (s *Server) sendBinary(r *http.Request, args []string) (reply, error) {
	if len(args) != 1 {
		return nil, fail(http.StatusBadRequest, "want POST /p2p/binary/<name>")
	}
	c, err := s.con(args)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if err := c.p.Send(r.Context(), body, netip.AddrPort{}); err != nil {
		return nil, fail(http.StatusBadGateway, "sending on %q: %v", c.name, err)
	}
	return reply{"name": c.name, "sent": len(body)}, nil
}

func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fail(http.StatusRequestEntityTooLarge, "a message is at most %d bytes", maxBody)
		}
		return nil, fail(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

func (s *Server) recvBinary(w http.ResponseWriter, r *http.Request, args []string) error {
	c, err := s.con(args)
	if err != nil {
		return err
	}
	timeout, _, err := recvArgs(args[1:])
	if err != nil {
		return err
	}
	m, err := s.next(r.Context(), c, pipe.SubAll, timeout)
	if err != nil {
		return err
	}
	defer m.Release()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(m.Data)))
	w.Write(m.Data)
	return nil
}

// subscribe adds (or, with add false, removes) the subscription args
// name on a connection.
func (s *Server) subscribe(args []string, add bool) (reply, error) {
	c, err := s.con(args)
	if err != nil {
		return nil, err
	}
	sub, msgP, addrP, err := subOf(args[1:])
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if add {
		c.subs[msgP+"\x00"+addrP] = sub
	} else {
		delete(c.subs, msgP+"\x00"+addrP)
	}
	s.mu.Unlock()
	if add {
		c.p.Subscribe(sub)
		return reply{"name": c.name, "sub": []string{msgP, addrP}}, nil
	}
	c.p.Unsubscribe(sub)
	return reply{"name": c.name, "unsub": []string{msgP, addrP}}, nil
}

func (s *Server) closeCon(args []string) (reply, error) {
	c, err := s.con(args)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cons[c.name] == c { // not one opened under the name meanwhile
		delete(s.cons, c.name)
	}
	s.mu.Unlock()
	c.close()
	return reply{"name": c.name, "closed": true}, nil
}

func (s *Server) list() reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := reply{}
	for name, c := range s.cons {
		out[name] = c.info
	}
	return reply{"cons": out}
}
