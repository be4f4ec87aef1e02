// Package home is the Home screen: this computer's address to share, as
// text and as a QR code, and the node's state in plain words, each line
// with a green, amber or red mark.
//
// The screen holds widgets only: the app fills a Status from the engine
// (off the UI goroutine) and hands it to ShowStatus inside fyne.Do.
package home

import (
	"fmt"
	"image"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	qrcode "github.com/skip2/go-qrcode"
)

// qrMinSize is the smallest the QR code is drawn, in Fyne units: a phone
// camera held at arm's length from a laptop screen needs modules of a few
// pixels each (an address is a version 8–10 code, 57 modules and a quiet
// zone of 4 each side).
const qrMinSize = 256

// markSize is the diameter of a status line's mark.
const markSize = 12

// Status is what the Home screen shows. The app may show a cached one at
// once, with Refreshing set, and the fresh one when the engine has it.
type Status struct {
	// Address is this node's address text (addr.Address.Encode); empty
	// while unknown.
	Address string
	// Brokers is how many signaling brokers the node uses, BrokersUp how
	// many it is connected to.
	Brokers, BrokersUp int
	// Verdict says what the network means for connecting to friends
	// (netcheck.Report.Verdict), and Level grades it (NATLevel).
	Verdict string
	Level   Level
	// Mapping describes the port the router maps to this computer by UPnP
	// or NAT-PMP (e.g. "port 51000 on 198.51.100.2 by UPnP"); empty if none.
	Mapping string
	// Listening says where the node listens (e.g. "port 41234, TCP and
	// UDP"); empty if it does not.
	Listening string
	// Refreshing marks a last known status: fresh data is on its way.
	Refreshing bool
	// Err is why the node is not running, if it is not.
	Err error
	// Event says what last happened to the node in words (e.g. "18:20:
	// the network changed …; your address is updated"); empty if nothing.
	Event string
}

// Home is the Home screen. Create it with New; call ShowStatus on the UI
// goroutine.
type Home struct {
	widget.BaseWidget

	status  Status
	address *widget.Label
	copy    *widget.Button
	copied  *widget.Label
	qr      *canvas.Image
	hint    *widget.Label // "Refreshing…"
	err     *widget.Label
	event   *widget.Label

	signaling, nat, mapping, listening line
}

// line is one status line: a coloured mark and words.
type line struct {
	mark *canvas.Circle
	text *widget.Label
}

func newLine() line {
	l := line{mark: canvas.NewCircle(theme.Color(theme.ColorNameDisabled)), text: widget.NewLabel("")}
	l.text.Wrapping = fyne.TextWrapWord
	return l
}

func (l line) set(lv Level, text string) {
	l.mark.FillColor = theme.Color(levelColor(lv))
	l.mark.Refresh()
	l.text.SetText(text)
}

func (l line) object() fyne.CanvasObject {
	// The mark sits level with the first line of a wrapped text.
	oneLine := widget.NewLabel("X").MinSize().Height
	mark := container.NewGridWrap(fyne.NewSize(markSize, oneLine),
		container.NewCenter(container.NewGridWrap(fyne.NewSize(markSize, markSize), l.mark)))
	return container.NewBorder(nil, nil, container.NewVBox(mark), nil, l.text)
}

// levelColor is a level's mark colour, from the theme.
func levelColor(l Level) fyne.ThemeColorName {
	switch l {
	case Good:
		return theme.ColorNameSuccess
	case Fair:
		return theme.ColorNameWarning
	case Poor:
		return theme.ColorNameError
	}
	return theme.ColorNameDisabled
}

// New builds the Home screen, showing that the status is being looked up.
func New() *Home {
	h := &Home{
		address:   widget.NewLabel(""),
		copied:    widget.NewLabel("Copied to the clipboard."),
		qr:        canvas.NewImageFromImage(nil),
		hint:      widget.NewLabelWithStyle("Refreshing…", fyne.TextAlignLeading, fyne.TextStyle{Italic: true}),
		err:       widget.NewLabel(""),
		event:     widget.NewLabel(""),
		signaling: newLine(), nat: newLine(), mapping: newLine(), listening: newLine(),
	}
	// The address wraps anywhere (it has no spaces), and is selectable so
	// a part can be copied too; Copy takes it whole.
	h.address.TextStyle = fyne.TextStyle{Monospace: true}
	h.address.Wrapping = fyne.TextWrapBreak
	h.address.Selectable = true
	h.copy = widget.NewButtonWithIcon("Copy", theme.ContentCopyIcon(), h.copyAddress)
	h.copied.Importance = widget.SuccessImportance
	h.copied.Hide()
	// Nearest-neighbour scaling keeps the modules' edges sharp for the
	// camera; smoothing would blur them into grey.
	h.qr.ScaleMode = canvas.ImageScalePixels
	h.qr.FillMode = canvas.ImageFillContain
	h.hint.Importance = widget.LowImportance
	h.err.Importance = widget.DangerImportance
	h.err.Wrapping = fyne.TextWrapWord
	h.event.Importance = widget.HighImportance
	h.event.Wrapping = fyne.TextWrapWord
	h.event.Hide()
	h.ExtendBaseWidget(h)
	h.showAddress("")
	h.ShowStatus(Status{Refreshing: true})
	return h
}

// CreateRenderer lays the screen out: the address and its QR code side by
// side, the status lines below.
func (h *Home) CreateRenderer() fyne.WidgetRenderer {
	title := widget.NewLabelWithStyle("Your address", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	help := widget.NewLabel("Send it to a friend, or let them scan the code: it is all they need to connect to you.")
	help.Wrapping = fyne.TextWrapWord
	text := container.NewVBox(title, help, h.address, container.NewHBox(h.copy, h.copied))
	share := container.NewBorder(nil, nil, nil, container.NewCenter(h.qr), text)
	status := widget.NewCard("Status", "", container.NewVBox(
		h.err, h.event, h.hint, h.signaling.object(), h.nat.object(), h.mapping.object(), h.listening.object()))
	return widget.NewSimpleRenderer(container.NewVScroll(container.NewPadded(container.NewVBox(share, status))))
}

// ShowStatus displays s. Call it on the UI goroutine. (Show, without
// arguments, is the widget's own: fyne.Widget needs it.)
func (h *Home) ShowStatus(s Status) {
	if s.Address != h.status.Address {
		h.showAddress(s.Address)
	}
	h.status = s

	h.hint.Hidden = !s.Refreshing
	h.hint.Refresh()
	h.event.SetText(s.Event)
	h.event.Hidden = s.Event == ""
	h.event.Refresh()
	if s.Err != nil {
		h.err.SetText("P2PD is not running: " + s.Err.Error())
		h.err.Show()
	} else {
		h.err.Hide()
	}

	switch {
	case s.Brokers == 0 && s.Refreshing:
		h.signaling.set(Unknown, "Signaling servers: checking…")
	case s.Brokers == 0:
		h.signaling.set(Poor, "Signaling servers: none set up, so friends can reach you only by your address's direct ways.")
	case s.BrokersUp >= s.Brokers:
		h.signaling.set(Good, fmt.Sprintf("Signaling servers: connected to %s.", ofN(s.Brokers, s.Brokers)))
	case s.BrokersUp > 0:
		h.signaling.set(Fair, fmt.Sprintf("Signaling servers: connected to %s.", ofN(s.BrokersUp, s.Brokers)))
	default:
		h.signaling.set(Poor, fmt.Sprintf("Signaling servers: connected to none of %d, so friends cannot ask your computer to punch a hole or relay.", s.Brokers))
	}

	if s.Verdict == "" {
		h.nat.set(Unknown, "Router: checking how it treats connections…")
	} else {
		h.nat.set(s.Level, s.Verdict)
	}

	switch {
	case s.Mapping != "":
		h.mapping.set(Good, "Port mapping: "+s.Mapping+".")
	case s.Refreshing && s.Verdict == "":
		h.mapping.set(Unknown, "Port mapping: checking…")
	case s.Level == Good:
		// Reachable anyway: the missing mapping costs nothing.
		h.mapping.set(Unknown, "Port mapping: none (not needed).")
	default:
		h.mapping.set(Fair, "Port mapping: none (your router opened no port for P2PD).")
	}

	switch {
	case s.Listening != "":
		h.listening.set(Good, "Listening on "+s.Listening+".")
	case s.Refreshing:
		h.listening.set(Unknown, "Listening: starting…")
	default:
		h.listening.set(Poor, "Not listening, so friends cannot connect to you.")
	}
	h.Refresh() // lines shown, hidden or rewrapped change the layout
}

// ofN words "n of m" with "both" and "all" where they read better.
func ofN(n, m int) string {
	switch {
	case n == m && m == 1:
		return "its one broker"
	case n == m && m == 2:
		return "both brokers"
	case n == m:
		return fmt.Sprintf("all %d brokers", m)
	}
	return fmt.Sprintf("%d of %d brokers", n, m)
}

// showAddress sets the address text and draws its QR code.
func (h *Home) showAddress(text string) {
	h.copied.Hide()
	if text == "" {
		h.address.SetText("Your address appears once P2PD has looked at your network.")
		h.address.TextStyle = fyne.TextStyle{Italic: true}
		h.copy.Disable()
		h.qr.Image = nil
		h.qr.Hide()
		return
	}
	h.address.TextStyle = fyne.TextStyle{Monospace: true}
	h.address.SetText(text)
	h.copy.Enable()
	img, err := qrImage(text)
	if err != nil {
		h.qr.Image = nil
		h.qr.Hide()
		return
	}
	px := img.Bounds().Dx()
	// Whole screen pixels per module (at scale 1): nearest-neighbour
	// scaling by a fraction would draw modules of uneven width.
	perModule := (qrMinSize + px - 1) / px
	side := float32(px * perModule)
	h.qr.Image = img
	h.qr.SetMinSize(fyne.NewSize(side, side))
	h.qr.Show()
	h.qr.Refresh()
}

// qrImage draws text as a QR code at one pixel a module, quiet zone
// included. The plain text form is encoded, not the p2pd: URI: its
// characters are all in QR's alphanumeric set (5.5 bits each), while the
// URI's lower-case scheme would need byte mode; it is the shorter code,
// and Parse reads either.
func qrImage(text string) (image.Image, error) {
	// Medium error correction (15%) survives glare and a slightly blurred
	// camera without growing the code past version 10.
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, err
	}
	return q.Image(-1), nil
}

// copyAddress puts the address on the clipboard.
func (h *Home) copyAddress() {
	if h.status.Address == "" {
		return
	}
	fyne.CurrentApp().Clipboard().SetContent(h.status.Address)
	h.copied.Show()
	h.Refresh()
}

// Status returns what the screen shows.
func (h *Home) Status() Status { return h.status }
