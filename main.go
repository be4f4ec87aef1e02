// Command p2pd connects two computers directly across the internet, to chat
// and send files, even when both sit behind home routers.
//
// With no arguments it opens the desktop app. Subcommands drive the same
// engine without a window:
//
//	p2pd version [--json]   show the build
//	p2pd ifs [--json]       list network interfaces, addresses and routes
//	p2pd nat [--json]       diagnose the network and explain what the NAT does
//	p2pd addr [--json]      print this computer's address
//	p2pd node               run a node until interrupted
//	p2pd connect ADDR       connect, echo, and report every strategy
//
// Exit codes: 0 success, 1 failure (one line on stderr says why), 2 usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand: it parses its own flags and returns an error
// to report, a usageError for bad arguments.
type command struct {
	summary string
	run     func(args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"version": {"show the version of this build", cmdVersion},
	"ifs":     {"list network interfaces, their addresses, default routes and routes", cmdIfs},
	"nat":     {"diagnose the network: external addresses, NAT behaviour, port mapping, clock, servers", cmdNat},
	"addr":    {"print this computer's P2PD address (starts a node briefly)", cmdAddr},
	"node":    {"run a node: print its address and serve until interrupted", cmdNode},
	"connect": {"connect to an address, send an ECHO and report each strategy", cmdConnect},
	"rest":    {"serve the local REST API (the seed library's) on 127.0.0.1:12333", cmdRest},
	"send":    {"send files or folders to an address: p2pd send PATH... --to ADDR", cmdSend},
	"receive": {"print this node's address and receive files offered to it", cmdReceive},
	"chat":    {"chat with an address or a friend, line by line: p2pd chat ADDR|NAME", cmdChat},
	"nearby":  {"list the P2PD nodes on this local network (no server needed)", cmdNearby},
	"friends": {"list, add or remove friends: p2pd friends [list] | add NAME ADDR | rm NAME", cmdFriends},
}

// usageError is a mistake in how p2pd was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		if err := runGUI(); err != nil {
			fmt.Fprintln(stderr, "p2pd:", err)
			return 1
		}
		return 0
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "p2pd: unknown command %q\n", name)
		usage(stderr)
		return 2
	}
	if path := os.Getenv("P2PD_CPUPROFILE"); path != "" {
		stop, err := profileCPU(strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid())))
		if err != nil {
			fmt.Fprintln(stderr, "p2pd:", err)
			return 1
		}
		defer stop()
	}
	err := cmd.run(args[1:], stdout)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "p2pd %s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "p2pd %s: %s\n", name, oneLine(err))
		return 1
	}
}

// profileCPU writes a CPU profile of the command to path (for go tool
// pprof) until stop is called.
func profileCPU(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("P2PD_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("P2PD_CPUPROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: p2pd [command] [flags]")
	fmt.Fprintln(w, "With no command, p2pd opens the desktop app. Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "Run 'p2pd COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set whose errors become usage errors.
func newFlags(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("p2pd "+name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	return fs
}

// parse parses args and rejects stray positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// oneLine keeps an error's report to one line.
func oneLine(err error) string { return flatten(err.Error()) }

// flatten joins a multi-line text into one line.
func flatten(s string) string { return strings.Join(strings.Fields(s), " ") }
