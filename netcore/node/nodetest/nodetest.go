// Package nodetest starts nodes for tests of the protocols built on them:
// on loopback only, with fresh identities and no servers, closed when the
// test ends.
package nodetest

import (
	"context"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/netcore/session"
)

// startTimeout bounds starting a loopback node (no servers to wait for).
const startTimeout = 10 * time.Second

// Loopback starts a node on loopback only.
func Loopback(t testing.TB) *node.Node {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	n, err := node.Start(ctx, node.Options{Loopback: true, Config: config.Config{}, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Connect connects from to to directly and returns the session, closed
// when the test ends.
func Connect(t testing.TB, from, to *node.Node) *session.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	res, err := from.Connect(ctx, to.Address(), node.ConnectOptions{Strategies: []string{node.Direct}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Session.Close() })
	return res.Session
}
