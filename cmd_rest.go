package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"p2pd/netcore/rest"
)

// restTimeouts bound slow clients; /recv and /open wait up to minutes
// by design, so writes are not bounded.
const (
	restHeaderTimeout = 10 * time.Second
	restMaxHeader     = 64 << 10
)

func cmdRest(args []string, stdout io.Writer) error {
	fs := newFlags("rest", stdout)
	port := fs.Uint("port", rest.DefaultPort, "HTTP port on 127.0.0.1 and [::1]")
	nf := nodeFlags{
		config: fs.String("config", "", "config file (default: $P2PD_CONFIG, else the public servers)"),
		port:   fs.Uint("node-port", 0, "the node's listen port (default: any free port)"),
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() != 0 || *port == 0 || *port > 65535 {
		return usageError{"usage: p2pd rest [--port 12333] [--config FILE] [--node-port N]"}
	}
	ctx, stop, n, err := startNodeUntilSignal(nf)
	if err != nil {
		return err
	}
	defer stop()
	defer n.Close()
	api := rest.New(n, rest.Options{Title: "P2PD", Author: "P2PD", Version: version})
	defer api.Close()

	var servers []*http.Server
	errs := make(chan error, 2)
	for _, host := range []string{"127.0.0.1", "::1"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(*port))))
		if err != nil {
			if host == "::1" {
				continue // no IPv6 loopback here
			}
			return fmt.Errorf("REST API: %w", err)
		}
		srv := &http.Server{Handler: api, ReadHeaderTimeout: restHeaderTimeout, MaxHeaderBytes: restMaxHeader}
		servers = append(servers, srv)
		go func() { errs <- srv.Serve(ln) }()
		fmt.Fprintf(stdout, "REST API on http://%s\n", ln.Addr())
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		return fmt.Errorf("REST API: %w", err)
	}
	// Close the connections first: waiting receives end at once.
	api.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		srv.Shutdown(sctx)
	}
	return nil
}
