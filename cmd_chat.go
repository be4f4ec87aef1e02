package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"p2pd/chat"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/node"
)

// cmdChat is a line chat: each line typed is a message to ADDR, each
// message from it is printed as it arrives. The history stays in the
// data dir; lines typed while the peer cannot be reached wait there.
func cmdChat(args []string, stdout io.Writer) error {
	fs := newFlags("chat", stdout)
	timeout := fs.Duration("timeout", 20*time.Second, "give up connecting after this long")
	queue := fs.String("queue", "", "write this `text` to the outbox and exit: the running p2pd node delivers it")
	nf := addNodeFlags(fs)
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"usage: p2pd chat ADDR [--queue TEXT]"}
	}
	peer, err := resolvePeer(pos[0])
	if err != nil {
		return err
	}
	home, err := config.Home()
	if err != nil {
		return err
	}
	store, err := chat.OpenStore(filepath.Join(home, "chat"))
	if err != nil {
		return err
	}
	defer store.Close()
	if *queue != "" {
		return queueMessage(store, peer, *queue, stdout)
	}
	ctx, stop, n, err := startNodeUntilSignal(nf)
	if err != nil {
		return err
	}
	defer stop()
	defer n.Close()
	var out sync.Mutex
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	peerID := identity.IDOf(peer.Key)
	c := chat.New(store, func(from identity.ID, m chat.Message) {
		if from == peerID {
			say("%s  them: %s", m.Time.Local().Format("15:04"), chat.Printable(m.Text))
		}
	})
	n.Handle(chat.Proto, c.Handle)

	peer = freshen(ctx, n, peer)
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	res, err := n.Connect(cctx, peer, node.ConnectOptions{})
	cancel()
	if err != nil {
		return err
	}
	defer res.Session.Close()
	say("Connected by %s. Type a line and Enter to send; Ctrl-D to quit.", res.Strategy)
	deliver := func() {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := c.Deliver(dctx, res.Session); err != nil {
			say("(not delivered yet: %v; it waits in the outbox)", err)
		}
	}
	deliver() // what was written earlier

	lines := make(chan string)
	go func() {
		defer close(lines)
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(make([]byte, chat.MaxText), chat.MaxText)
		for in.Scan() {
			lines <- in.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-res.Session.Done():
			say("The connection ended.")
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			if _, err := c.Write(peerID, line); err != nil {
				say("(%v)", err)
				continue
			}
			deliver()
		}
	}
}
