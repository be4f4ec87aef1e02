// Package connect is the Connect screen: paste or scan a friend's address,
// watch every connection strategy race with live progress, and save the
// friend once connected.
//
// The screen holds widgets only. The app sets OnConnect to start
// node.Connect off the UI goroutine, and its bridge hands each progress
// event to Progress and the outcome to Done, inside fyne.Do.
package connect

import (
	"context"
	"errors"
	"image/color"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/netcore/addr"
	"p2pd/netcore/node"
	"p2pd/ui/wording"
)

// tickEvery is how often a running strategy's elapsed time is redrawn:
// a tenth of a second is what the display shows and what the eye follows.
const tickEvery = 100 * time.Millisecond

// markSize is the diameter of a row's coloured mark.
const markSize = 12

// Connect is the Connect screen. Create it with New; call its methods on
// the UI goroutine.
type Connect struct {
	widget.BaseWidget

	// OnConnect is called when the user taps Connect, with the address
	// typed, pasted or scanned. It must not block: start connecting off
	// the UI goroutine and report through Progress and Done.
	OnConnect func(a *addr.Address)
	// OnCancel, when set, offers a Stop button while connecting; it should
	// cancel the connect's context (Done still follows).
	OnCancel func()
	// OnSaveFriend, when set, offers to save the peer after a connection
	// succeeds. Its error is shown to the user (e.g. the name is taken).
	OnSaveFriend func(name string, a *addr.Address) error

	win     fyne.Window
	entry   *widget.Entry
	message *widget.Label // the address's parse error, or a scan's outcome
	paste   *widget.Button
	scan    *widget.Button
	connect *widget.Button
	stop    *widget.Button

	rows    map[string]*row
	order   []string
	rowGrid *fyne.Container
	result  *widget.Label

	friend     *fyne.Container
	friendName *widget.Entry
	save       *widget.Button
	saveMsg    *widget.Label

	parsed     *addr.Address // the entry's address, nil while invalid
	peer       *addr.Address // the address being connected to, or connected
	connecting bool
	stopTicks  chan struct{}

	// Do runs f on the UI goroutine, for the screen's own goroutines (the
	// elapsed-time ticker, picture scans): fyne.Do unless replaced before
	// the first use, as an app's tests do to serialise updates.
	Do func(f func())
	// now reads the clock; tests replace it.
	now func() time.Time
}

// row is one strategy's line: its mark, name and state.
type row struct {
	mark   *canvas.Circle
	name   *widget.Label
	state  *widget.Label
	detail *widget.Label // the engine's own words, when they add something

	st     node.State    // "" while waiting
	reason string        // the engine's words for the last event
	base   time.Duration // the elapsed time the last event carried
	at     time.Time     // when that event arrived
}

// New builds the Connect screen; win is the window its file dialog opens
// over.
func New(win fyne.Window) *Connect {
	c := &Connect{win: win, rows: map[string]*row{}, Do: fyne.Do, now: time.Now}
	c.entry = widget.NewMultiLineEntry()
	c.entry.SetPlaceHolder("Paste your friend's address here (it starts with P2PD1-)")
	c.entry.Wrapping = fyne.TextWrapBreak
	c.entry.TextStyle = fyne.TextStyle{Monospace: true}
	c.entry.SetMinRowsVisible(3)
	c.entry.OnChanged = c.check
	c.message = widget.NewLabel("")
	c.message.Wrapping = fyne.TextWrapWord
	c.message.Hide()
	c.paste = widget.NewButtonWithIcon("Paste", theme.ContentPasteIcon(), c.pasteClipboard)
	c.scan = widget.NewButtonWithIcon("Scan QR picture…", theme.FileImageIcon(), c.openPicture)
	c.connect = widget.NewButtonWithIcon("Connect", theme.MailSendIcon(), c.start)
	c.connect.Importance = widget.HighImportance
	c.connect.Disable()
	c.stop = widget.NewButtonWithIcon("Stop", theme.CancelIcon(), func() {
		if c.OnCancel != nil {
			c.stop.Disable() // once is enough; Done follows
			c.OnCancel()
		}
	})
	c.stop.Hide()

	c.rowGrid = container.New(layout.NewFormLayout())
	for _, s := range node.Strategies {
		c.addRow(s)
	}
	c.rowGrid.Hide()
	c.result = widget.NewLabel("")
	c.result.Wrapping = fyne.TextWrapWord
	c.result.Hide()

	c.friendName = widget.NewEntry()
	c.friendName.SetPlaceHolder("Your friend's name")
	c.friendName.OnSubmitted = func(string) { c.saveFriend() }
	c.save = widget.NewButtonWithIcon("Save as friend", theme.DocumentSaveIcon(), c.saveFriend)
	c.saveMsg = widget.NewLabel("")
	c.saveMsg.Wrapping = fyne.TextWrapWord
	c.saveMsg.Hide()
	c.friend = container.NewVBox(container.NewBorder(nil, nil, nil, c.save, c.friendName), c.saveMsg)
	c.friend.Hide()

	c.ExtendBaseWidget(c)
	return c
}

// CreateRenderer lays the screen out.
func (c *Connect) CreateRenderer() fyne.WidgetRenderer {
	title := widget.NewLabelWithStyle("Connect to a friend", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	help := widget.NewLabel("Paste the address your friend sent you, or scan a picture of its QR code (you can also drop the picture on this window).")
	help.Wrapping = fyne.TextWrapWord
	buttons := container.NewHBox(c.paste, c.scan, layout.NewSpacer(), c.stop, c.connect)
	return widget.NewSimpleRenderer(container.NewVScroll(container.NewPadded(container.NewVBox(
		title, help, c.entry, c.message, buttons,
		c.rowGrid, c.result, c.friend,
	))))
}

// SetAddress puts an address in the entry, as if pasted (a p2pd: link the
// app was opened with, or a friend's saved address).
func (c *Connect) SetAddress(text string) { c.entry.SetText(strings.TrimSpace(text)) }

// check parses the entry as the user types and says what is wrong.
func (c *Connect) check(text string) {
	c.parsed = nil
	if strings.TrimSpace(text) == "" {
		c.message.Hide()
		c.updateButtons() // and lays out again
		return
	}
	a, err := addr.Parse(text)
	if err != nil {
		c.say(wording.Sentence(err.Error()), widget.DangerImportance)
	} else {
		c.parsed = a
		c.say("This is a valid address.", widget.SuccessImportance)
	}
	c.updateButtons()
}

// say shows msg under the entry.
func (c *Connect) say(msg string, imp widget.Importance) {
	c.message.Importance = imp
	c.message.SetText(msg)
	c.message.Show()
	c.Refresh()
}

func (c *Connect) updateButtons() {
	if c.parsed != nil && !c.connecting {
		c.connect.Enable()
	} else {
		c.connect.Disable()
	}
	if c.connecting && c.OnCancel != nil {
		c.stop.Show()
	} else {
		c.stop.Hide()
	}
	c.Refresh() // parts shown or hidden change the layout
}

func (c *Connect) pasteClipboard() {
	text := strings.TrimSpace(fyne.CurrentApp().Clipboard().Content())
	if text == "" {
		c.say("The clipboard is empty: copy your friend's address first.", widget.WarningImportance)
		return
	}
	c.entry.SetText(text)
}

// pictureFilter lists the pictures a scan reads.
var pictureFilter = storage.NewExtensionFileFilter([]string{".png", ".jpg", ".jpeg"})

func (c *Connect) openPicture() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			c.say("Could not open that file: "+err.Error(), widget.DangerImportance)
			return
		}
		if r == nil {
			return // the user closed the dialog
		}
		c.scanFrom(r)
	}, c.win)
	d.SetFilter(pictureFilter)
	d.Show()
}

// Dropped scans the first of the files dropped on the window; route the
// window's drops here with w.SetOnDropped(screen.Dropped).
func (c *Connect) Dropped(_ fyne.Position, uris []fyne.URI) {
	if len(uris) == 0 || c.connecting {
		return // the entry is locked while connecting
	}
	r, err := storage.Reader(uris[0])
	if err != nil {
		c.say("Could not open "+uris[0].Name()+": "+err.Error(), widget.DangerImportance)
		return
	}
	c.scanFrom(r)
}

// scanFrom decodes the picture off the UI goroutine: a large screenshot
// takes a noticeable moment.
func (c *Connect) scanFrom(r fyne.URIReadCloser) {
	name := r.URI().Name()
	c.say("Looking for a QR code in "+name+"…", widget.MediumImportance)
	go func() {
		text, err := ScanAddress(r)
		r.Close()
		c.Do(func() {
			if c.connecting {
				return // the user went on with the address already there
			}
			if err != nil {
				c.say(wording.Sentence(err.Error()), widget.DangerImportance)
				return
			}
			c.entry.SetText(text)
			if c.parsed != nil {
				c.say("Found your friend's address in "+name+".", widget.SuccessImportance)
			}
		})
	}()
}

// start begins connecting to the entry's address.
func (c *Connect) start() {
	if c.parsed == nil || c.connecting {
		return
	}
	c.begin(c.parsed)
	if c.OnConnect != nil {
		c.OnConnect(c.peer)
	}
}

// begin resets the rows and starts their clock.
func (c *Connect) begin(a *addr.Address) {
	c.peer = a
	c.connecting = true
	for _, s := range c.order {
		c.rows[s].set("", 0, "", c.now())
	}
	c.rowGrid.Show()
	c.result.Hide()
	c.friend.Hide()
	c.saveMsg.Hide()
	c.save.Enable()
	c.friendName.Enable()
	c.stop.Enable()
	c.entry.Disable()
	c.paste.Disable()
	c.scan.Disable()
	c.updateButtons()
	c.stopTicks = make(chan struct{})
	go ticks(c.stopTicks, tickEvery, c.Do, c.tick)
}

// ticks calls tick through do every interval until stop closes.
func ticks(stop <-chan struct{}, every time.Duration, do func(func()), tick func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			do(tick)
		}
	}
}

// tick redraws the running strategies' elapsed times.
func (c *Connect) tick() {
	if !c.connecting {
		return // a tick queued before Done
	}
	now := c.now()
	for _, s := range c.order {
		if r := c.rows[s]; r.running() {
			r.showState(now)
		}
	}
}

// Connecting reports whether a connect is under way (between the Connect
// tap, or the first Progress, and Done).
func (c *Connect) Connecting() bool { return c.connecting }

// Progress shows one strategy's event. Call it on the UI goroutine with
// each event of node.ConnectOptions.Progress, in order.
func (c *Connect) Progress(e node.Event) {
	if !c.connecting {
		// The app connected without the button (a friend's saved
		// address): show the race all the same.
		c.begin(c.parsed)
	}
	r, ok := c.rows[e.Strategy]
	if !ok {
		r = c.addRow(e.Strategy)
	}
	r.set(e.State, e.Elapsed, e.Reason, c.now())
	c.Refresh()
}

// Done ends the connect: strategy is the one that won, or err says why
// none did (an err wrapping context.Canceled reads as the user stopping
// it). Call it on the UI goroutine once node.Connect returns.
func (c *Connect) Done(strategy string, err error) {
	if c.stopTicks != nil {
		close(c.stopTicks)
		c.stopTicks = nil
	}
	c.connecting = false
	now := c.now()
	for _, s := range c.order {
		r := c.rows[s]
		switch {
		case r.running():
			// No final event came (the app gave up on the engine).
			r.set(node.Cancelled, r.elapsed(now), "", now)
		case r.st == "":
			r.state.SetText("Not tried")
		}
	}
	c.entry.Enable()
	c.paste.Enable()
	c.scan.Enable()
	c.updateButtons()
	if err == nil {
		c.result.Importance = widget.SuccessImportance
		c.result.SetText("Connected to your friend (" + strategyName(strategy) + ").")
		c.result.Show()
		if c.OnSaveFriend != nil && c.peer != nil {
			c.friend.Show()
		}
	} else {
		c.result.Importance = widget.DangerImportance
		c.result.SetText(c.failure(err))
		c.result.Show()
	}
	c.Refresh()
}

// failure explains a failed connect: the rows hold each strategy's
// reason, so the summary only points there, unless no row has one.
func (c *Connect) failure(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "You stopped connecting."
	case errors.Is(err, context.DeadlineExceeded):
		return "Gave up: no way connected in time."
	}
	if slices.ContainsFunc(c.order, func(s string) bool { st := c.rows[s].st; return st == node.Failed || st == node.Skipped }) {
		return "Could not connect: none of the ways worked. Each one's reason is above."
	}
	return "Could not connect: " + wording.Sentence(err.Error())
}

func (c *Connect) saveFriend() {
	if c.OnSaveFriend == nil || c.peer == nil {
		return
	}
	name := strings.TrimSpace(c.friendName.Text)
	if name == "" {
		c.saveMsg.Importance = widget.WarningImportance
		c.saveMsg.SetText("Type a name for your friend first.")
		c.saveMsg.Show()
		c.Refresh()
		return
	}
	if err := c.OnSaveFriend(name, c.peer); err != nil {
		c.saveMsg.Importance = widget.DangerImportance
		c.saveMsg.SetText("Could not save: " + err.Error())
		c.saveMsg.Show()
		c.Refresh()
		return
	}
	c.saveMsg.Importance = widget.SuccessImportance
	c.saveMsg.SetText("Saved as " + name + ".")
	c.saveMsg.Show()
	c.save.Disable()
	c.friendName.Disable()
	c.Refresh()
}

// addRow adds a strategy's row at the end.
func (c *Connect) addRow(strategy string) *row {
	r := &row{
		mark:   canvas.NewCircle(theme.Color(theme.ColorNameDisabled)),
		name:   widget.NewLabelWithStyle(strategyName(strategy), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		state:  widget.NewLabel("Waiting"),
		detail: widget.NewLabel(""),
	}
	r.state.Wrapping = fyne.TextWrapWord
	r.detail.Wrapping = fyne.TextWrapWord
	r.detail.Importance = widget.LowImportance
	r.detail.SizeName = theme.SizeNameCaptionText
	r.detail.Hide()
	// The mark sits level with the name, not in the middle of a row that
	// a long reason makes tall.
	mark := container.NewGridWrap(fyne.NewSize(markSize, r.name.MinSize().Height),
		container.NewCenter(container.NewGridWrap(fyne.NewSize(markSize, markSize), r.mark)))
	c.rowGrid.Add(container.NewVBox(container.NewHBox(mark, r.name)))
	c.rowGrid.Add(container.NewVBox(r.state, r.detail))
	c.rows[strategy] = r
	c.order = append(c.order, strategy)
	return r
}

// set records an event's state and shows it; st "" is waiting.
func (r *row) set(st node.State, elapsed time.Duration, reason string, now time.Time) {
	switch {
	case st == node.Progress:
		st = node.Started // a step of a running strategy
	case st == node.Failed && strings.Contains(reason, context.Canceled.Error()):
		// The user stopped it (the engine reports the caller's cancel as a
		// failure): no fault to explain.
		st, reason = node.Cancelled, ""
	}
	r.st, r.base, r.at, r.reason = st, elapsed, now, reason
	// The state line says why in plain words; the detail line keeps the
	// engine's own words when they say more (addresses, error texts).
	plain, mapped := plainReason(reason)
	detail := ""
	switch {
	case st == node.Started && mapped:
		detail = plain
	case st == node.Started || st == node.Succeeded || mapped:
		detail = reason
	}
	r.detail.SetText(detail)
	if detail != "" {
		r.detail.Show()
	} else {
		r.detail.Hide()
	}
	r.showState(now)
	r.mark.FillColor = markColor(st)
	r.mark.Refresh()
}

func (r *row) running() bool { return r.st == node.Started }

// elapsed is the strategy's time so far: the engine's clock at its last
// event, plus what passed here since.
func (r *row) elapsed(now time.Time) time.Duration {
	if r.running() {
		return r.base + now.Sub(r.at)
	}
	return r.base
}

// showState writes the state line.
func (r *row) showState(now time.Time) {
	t := seconds(r.elapsed(now))
	why, _ := plainReason(r.reason)
	var s string
	switch r.st {
	case "":
		s = "Waiting"
	case node.Started:
		s = "Trying… " + t
	case node.Succeeded:
		s = "Connected in " + t
	case node.Failed:
		s = "Failed after " + t
	case node.Skipped:
		s = "Skipped"
	case node.Cancelled:
		s = "Stopped after " + t
	default:
		s = wording.Sentence(string(r.st)) // a state from a newer engine
	}
	if why != "" && r.st != node.Started && r.st != node.Succeeded {
		s += ": " + why
	}
	r.state.SetText(s)
}

// markColor is a state's mark: green connected, red failed, the accent
// colour while trying, grey otherwise.
func markColor(st node.State) color.Color {
	switch st {
	case node.Succeeded:
		return theme.Color(theme.ColorNameSuccess)
	case node.Failed:
		return theme.Color(theme.ColorNameError)
	case node.Started:
		return theme.Color(theme.ColorNamePrimary)
	}
	return theme.Color(theme.ColorNameDisabled)
}

// Submit does what the Connect button does: connect to the address typed
// or pasted, if it is valid and no connect runs.
func (c *Connect) Submit() {
	if !c.connect.Disabled() {
		c.connect.OnTapped()
	}
}

// Result is the connect's outcome in words ("" until one ends).
func (c *Connect) Result() string {
	if !c.result.Visible() {
		return ""
	}
	return c.result.Text
}

// SaveAs does what typing name and Save as friend do after a connect, and
// returns what the screen then says ("" if the offer to save is not
// showing).
func (c *Connect) SaveAs(name string) string {
	if !c.friend.Visible() {
		return ""
	}
	c.friendName.SetText(name)
	c.save.OnTapped()
	return c.saveMsg.Text
}
