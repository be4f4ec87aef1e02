package presence_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"p2pd/chat"
	"p2pd/friends"
	"p2pd/netcore/config"
	"p2pd/netcore/node"
	"p2pd/presence"
)

// start starts a node on loopback with its chat history in home.
func start(home string) (*node.Node, *chat.Chat, func()) {
	n, err := node.Start(context.Background(), node.Options{Loopback: true, Config: config.Config{}, Home: home, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	store, err := chat.OpenStore(filepath.Join(home, "chat"))
	if err != nil {
		panic(err)
	}
	c := chat.New(store, nil)
	n.Handle(chat.Proto, c.Handle)
	return n, c, func() { n.Close(); store.Close() }
}

// A Keeper on Alice's node delivers the message she wrote for Bob as
// soon as it can reach him, and says so.
func ExampleKeeper() {
	homeA, _ := os.MkdirTemp("", "alice")
	homeB, _ := os.MkdirTemp("", "bob")
	defer os.RemoveAll(homeA)
	defer os.RemoveAll(homeB)
	alice, aliceChat, closeA := start(homeA)
	defer closeA()
	bob, _, closeB := start(homeB)
	defer closeB()

	list, _ := friends.Open(homeA)
	bobAddr, _ := bob.Address().Encode()
	list.Add("Bob", bobAddr)
	aliceChat.Write(bob.ID(), "see you at eight")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := presence.New(alice, list, presence.Options{
		Work:   []presence.Work{{Noun: "message", Courier: aliceChat}},
		Logger: slog.New(slog.DiscardHandler),
		Report: func(e presence.Event) {
			if e.Kind == presence.Delivered {
				fmt.Println(e)
				cancel()
			}
		},
	})
	k.Run(ctx)
	// Output: delivered 1 message to Bob
}
