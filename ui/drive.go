package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"

	"p2pd/ui/transfers"
)

// driveWait bounds one driven step that waits for the network.
const driveWait = time.Minute

// driveResult is the line a driven command answers with.
type driveResult struct {
	OK    bool   `json:"ok"`
	Value string `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// drive reads commands from in, one per line, runs each against the
// window as a user would (through the screens' own buttons and entries)
// and answers each with one JSON line on out. It is the smoke test's hook
// into the real app (P2PD_UI_DRIVE=1); it returns when in ends or ctx
// does.
//
//	address              wait for this node's fresh address
//	title TEXT           set the window's title
//	tab N                show tab N (0 Home … 6 Settings)
//	connect ADDRESS      connect from the Connect tab; the outcome in words
//	save NAME            save the peer just connected as friend NAME
//	say NAME TEXT        open the chat with NAME, type TEXT, press Enter
//	line NAME TEXT       wait for a line with TEXT in the chat with NAME
//	                     (delivered, if written here)
//	drop PATH            drop the file PATH on the window (the open chat)
//	asking               wait for an offer's question (left open)
//	accept               wait for an offer's question and press Accept
//	done                 wait until every transfer shown is done
//	hide, show           take the window off the display, put it back
//	quit                 close the window
func (m *mainWindow) drive(ctx context.Context, in io.Reader, out io.Writer) {
	enc := json.NewEncoder(out)
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(lines.Text()), " ")
		value, err := m.step(ctx, cmd, arg)
		r := driveResult{OK: err == nil, Value: value}
		if err != nil {
			r.Error = err.Error()
		}
		enc.Encode(r)
		if cmd == "quit" || ctx.Err() != nil {
			return
		}
	}
}

// onUI runs f on the UI goroutine and waits for it (drive runs on its own
// goroutine, so waiting is safe).
func onUI[T any](f func() T) T {
	var v T
	fyne.DoAndWait(func() { v = f() })
	return v
}

// until polls f on the UI goroutine until it reports done, or driveWait
// passes.
func until(ctx context.Context, what string, f func() (string, bool)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, driveWait)
	defer cancel()
	for {
		type res struct {
			v  string
			ok bool
		}
		r := onUI(func() res { v, ok := f(); return res{v, ok} })
		if r.ok {
			return r.v, nil
		}
		select {
		case <-ctx.Done():
			return r.v, fmt.Errorf("waited %v for %s", driveWait, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *mainWindow) step(ctx context.Context, cmd, arg string) (string, error) {
	name, text, _ := strings.Cut(arg, " ")
	switch cmd {
	case "address":
		return until(ctx, "an address", func() (string, bool) {
			s := m.home.Status()
			return s.Address, s.Address != "" && !s.Refreshing
		})
	case "title":
		onUI(func() bool { m.win.SetTitle(arg); return true })
		return "", nil
	case "tab":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 || n >= len(m.tabs.Items) {
			return "", fmt.Errorf("no tab %q", arg)
		}
		onUI(func() bool { m.tabs.SelectIndex(n); return true })
		return "", nil
	case "connect":
		onUI(func() bool {
			m.tabs.SelectIndex(tabConnect)
			m.conn.SetAddress(arg)
			m.conn.Submit()
			return true
		})
		res, err := until(ctx, "the connect", func() (string, bool) { r := m.conn.Result(); return r, r != "" })
		if err == nil && !strings.HasPrefix(res, "Connected") {
			err = errors.New(res)
		}
		return res, err
	case "save":
		res := onUI(func() string { return m.conn.SaveAs(arg) })
		if !strings.HasPrefix(res, "Saved") {
			return res, fmt.Errorf("not saved: %q", res)
		}
		return res, nil
	case "say":
		// The friend joins the chat's list with the next refresh.
		if _, err := until(ctx, name+" in the chat's list", func() (string, bool) {
			m.tabs.SelectIndex(tabChat)
			m.chat.Open(name)
			return "", m.chat.Current() == name
		}); err != nil {
			return "", err
		}
		if said := onUI(func() string { return m.chat.SendText(text) }); said != "" {
			return said, errors.New(said)
		}
		return "", nil
	case "line":
		return until(ctx, "the line "+strconv.Quote(text), func() (string, bool) {
			if m.chat.Current() != name {
				m.tabs.SelectIndex(tabChat)
				m.chat.Open(name)
			}
			for _, l := range m.chat.Lines() {
				if strings.Contains(l.Text, text) && (!l.Out || l.Delivered) {
					return l.Text, true
				}
			}
			return "", false
		})
	case "drop":
		if !onUI(func() bool {
			m.tabs.SelectIndex(tabChat)
			if m.chat.Current() == "" {
				return false
			}
			m.drop(fyne.NewPos(10, 10), []fyne.URI{storage.NewFileURI(arg)})
			return true
		}) {
			return "", errors.New("no chat is open to drop the file in")
		}
		return "", nil
	case "asking":
		return until(ctx, "an offer", func() (string, bool) {
			ids := m.trans.Asking()
			return strings.Join(ids, " "), len(ids) > 0
		})
	case "accept":
		return until(ctx, "an offer", func() (string, bool) {
			for _, id := range m.trans.Asking() {
				return id, m.trans.Answer(id, true)
			}
			return "", false
		})
	case "done":
		return until(ctx, "the transfers", func() (string, bool) {
			rows := m.trans.Rows()
			var b strings.Builder
			for _, r := range rows {
				fmt.Fprintf(&b, "%s %s %d/%d; ", r.Name, stateWord(r.State), r.Done, r.Total)
				if r.State != transfers.Done {
					return b.String(), false
				}
			}
			return b.String(), len(rows) > 0
		})
	case "hide":
		onUI(func() bool { m.win.Hide(); return true })
		return "", nil
	case "show":
		onUI(func() bool { m.win.Show(); return true })
		return "", nil
	case "quit":
		onUI(func() bool { m.win.Close(); return true })
		return "", nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

// stateWord names a transfer state for the driver's answers.
func stateWord(s transfers.State) string {
	return [...]string{"waiting", "running", "done", "failed", "cancelled", "declined"}[s]
}
