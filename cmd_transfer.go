package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/transfer"
)

// parseMixed parses flags that may come after positional arguments
// ("p2pd send a.txt b.txt --to ADDR") and returns the positional ones.
func parseMixed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdSend(args []string, stdout io.Writer) error {
	fs := newFlags("send", stdout)
	to := fs.String("to", "", "the receiver's address (required)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	strategies := fs.String("strategies", strings.Join(node.Strategies, ","), "strategies to race, comma-separated")
	timeout := fs.Duration("timeout", 20*time.Second, "give up connecting after this long")
	queue := fs.Bool("queue", false, "queue the files for a friend: the running p2pd node sends them when the friend can be reached")
	nf := addNodeFlags(fs)
	paths, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 || *to == "" {
		return usageError{"usage: p2pd send PATH... --to ADDR [--queue]"}
	}
	if *queue {
		return queueFiles(*to, paths, stdout)
	}
	peer, err := resolvePeer(*to)
	if err != nil {
		return err
	}
	ctx, stop, n, err := startNodeUntilSignal(nf)
	if err != nil {
		return err
	}
	defer stop()
	defer n.Close()
	peer = freshen(ctx, n, peer)
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	res, err := n.Connect(cctx, peer, node.ConnectOptions{Strategies: strings.Split(*strategies, ",")})
	cancel()
	if err != nil {
		return err
	}
	defer res.Session.Close()
	start := time.Now()
	progress := func(p transfer.Progress) {
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "\r%s: %s of %s, %s/s, %v left   ", p.File, transfer.FormatSize(p.Done), transfer.FormatSize(p.Total), transfer.FormatSize(int64(p.Rate)), p.ETA.Round(time.Second))
		}
	}
	result, sent, err := transfer.Send(ctx, res.Session, paths, progress)
	took := time.Since(start)
	if *asJSON {
		out := struct {
			Strategy string   `json:"strategy"`
			Saved    []string `json:"saved"`
			Sent     int64    `json:"sent"`
			Seconds  float64  `json:"seconds"`
			Error    string   `json:"error,omitempty"`
		}{res.Strategy, result.Saved, sent, took.Seconds(), ""}
		if err != nil {
			out.Error = err.Error()
		}
		if werr := writeJSON(stdout, out); werr != nil {
			return werr
		}
		return err
	}
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Sent %s in %v over %s; saved as %s.\n", transfer.FormatSize(sent), took.Round(time.Millisecond), res.Strategy, strings.Join(result.Saved, ", "))
	return nil
}

func cmdReceive(args []string, stdout io.Writer) error {
	fs := newFlags("receive", stdout)
	dir := fs.String("dir", ".", "the folder to save into")
	yes := fs.Bool("yes", false, "accept every offer without asking")
	asJSON := fs.Bool("json", false, "print the address and each result as JSON lines")
	nf := addNodeFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop, n, err := startNodeUntilSignal(nf)
	if err != nil {
		return err
	}
	defer stop()
	defer n.Close()
	var mu sync.Mutex // one question at a time, one line at a time
	var answers <-chan string
	if !*yes {
		answers = stdinLines(ctx)
	}
	r := &transfer.Receiver{
		Dir: *dir,
		Choose: func(asked context.Context, peer identity.ID, o transfer.Offer) (string, bool) {
			mu.Lock()
			defer mu.Unlock()
			if asked.Err() != nil {
				return "", false // gone while another offer was asked about
			}
			say := stdout
			if *asJSON {
				say = os.Stderr // stdout is for JSON lines
			}
			fmt.Fprintf(say, "Offer from %s: %d file(s), %s, first %q.\n", peer, len(o.Files), transfer.FormatSize(o.Total), o.Files[0].Path)
			if *yes {
				return "", true
			}
			// Only a line typed once asked answers: not one typed while
			// nothing was asked, nor one meant for an offer that went.
			for stale := true; stale; {
				select {
				case _, open := <-answers:
					stale = open
				default:
					stale = false
				}
			}
			fmt.Fprint(say, "Accept? [y/N] ")
			select {
			case line, ok := <-answers:
				return "", ok && strings.EqualFold(strings.TrimSpace(line), "y")
			case <-asked.Done():
				if ctx.Err() != nil {
					fmt.Fprintln(say) // stopping: the prompt's line ends
					return "", false
				}
				why := "the sender went away"
				if errors.Is(context.Cause(asked), transfer.ErrWithdrawn) {
					why = "the sender withdrew it"
				}
				fmt.Fprintf(say, "\nNo longer asking: %s.\n", why)
				return "", false
			}
		},
		Done: func(o transfer.Offer, res transfer.Result) {
			mu.Lock()
			defer mu.Unlock()
			if *asJSON {
				writeJSON(stdout, res)
				return
			}
			if res.OK {
				fmt.Fprintf(stdout, "Saved %s in %s.\n", strings.Join(res.Saved, ", "), *dir)
			} else {
				fmt.Fprintf(stdout, "Transfer failed: %s.\n", res.Error)
			}
		},
	}
	n.Handle(transfer.Proto, r.Handle)
	if err := printAddress(stdout, n, *asJSON); err != nil {
		return err
	}
	<-ctx.Done()
	return n.Close()
}

// stdinLines hands out the lines typed on stdin, until its end or ctx's.
// The read itself cannot be abandoned: the process ends it.
func stdinLines(ctx context.Context) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		in := bufio.NewReader(os.Stdin)
		for {
			line, err := in.ReadString('\n')
			if line != "" {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return lines
}
