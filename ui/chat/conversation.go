package chat

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/ui/wording"
)

// page is how many lines a conversation shows at first, and how many more
// each tap on "Show earlier messages" adds. Every shown line costs layout
// time whenever the conversation changes (a thousand make adding one take
// a noticeable moment), and a few screens of it are all one reads at once.
const page = 100

// indent is how far a line is pushed to its side, so the friend's lines
// and one's own stand apart.
const indent = 60

// Words the conversation shows.
const (
	waiting   = "not delivered yet"
	delivered = "delivered"
	you       = "You"
)

// initConversation builds the conversation's part of the screen.
func (s *Screen) initConversation() {
	s.index = map[string]int{}
	s.earlier = widget.NewButtonWithIcon("", theme.MoveUpIcon(), s.showEarlier)
	s.earlier.Importance = widget.LowImportance
	s.lines = container.NewVBox(s.earlier)
	s.scroll = container.NewVScroll(s.lines)
	s.hint = widget.NewLabel("")
	s.hint.Wrapping = fyne.TextWrapWord
	s.hint.Importance = widget.LowImportance
	s.hint.Alignment = fyne.TextAlignCenter
	s.convo = container.NewStack(s.scroll, container.NewVBox(s.hint))
}

// showLines replaces the conversation with lines, showing the last page
// of them.
func (s *Screen) showLines(lines []Line) {
	s.history = slices.Clone(lines)
	clear(s.index)
	for i, l := range s.history {
		if l.ID != "" {
			s.index[l.ID] = i
		}
	}
	s.first = max(0, len(s.history)-page)
	s.rows = make([]*row, 0, len(s.history)-s.first)
	objects := make([]fyne.CanvasObject, 0, 1+len(s.history)-s.first)
	objects = append(objects, s.earlier)
	for _, l := range s.history[s.first:] {
		r := s.newRow(l)
		s.rows = append(s.rows, r)
		objects = append(objects, r.box)
	}
	s.lines.Objects = objects
	s.showMarkers()
	s.toBottom()
}

// add adds l at the end, or updates the line with its ID.
func (s *Screen) add(l Line) {
	if i, ok := s.index[l.ID]; ok && l.ID != "" {
		s.history[i] = l
		if i < s.first {
			return // not shown yet
		}
		k := i - s.first
		if r := s.rows[k]; r.out == l.Out {
			if r.set(l, s.who(l), s.when(l.Time)) {
				s.layoutLines() // the text, and so maybe its height, changed
			}
			return
		}
		// A line that changed sides is drawn again (a muddled app, but
		// the latest word wins).
		r := s.newRow(l)
		s.rows[k] = r
		s.lines.Objects[1+k] = r.box
		s.layoutLines()
		return
	}
	if l.ID != "" {
		s.index[l.ID] = len(s.history)
	}
	s.history = append(s.history, l)
	r := s.newRow(l)
	s.rows = append(s.rows, r)
	s.lines.Objects = append(s.lines.Objects, r.box)
	s.showMarkers()
	s.toBottom()
}

// showEarlier shows another page of the lines before the first shown.
func (s *Screen) showEarlier() {
	from := max(0, s.first-page)
	before := s.lines.MinSize().Height
	rows := make([]*row, 0, s.first-from+len(s.rows))
	objects := make([]fyne.CanvasObject, 0, len(s.lines.Objects)+s.first-from)
	objects = append(objects, s.earlier)
	for _, l := range s.history[from:s.first] {
		r := s.newRow(l)
		rows = append(rows, r)
		objects = append(objects, r.box)
	}
	s.rows = append(rows, s.rows...)
	s.lines.Objects = append(objects, s.lines.Objects[1:]...)
	s.first = from
	s.showMarkers()
	s.layoutLines()
	// The lines that were in view stay there: the new ones are above.
	s.scroll.ScrollToOffset(fyne.NewPos(0, s.scroll.Offset.Y+s.lines.MinSize().Height-before))
}

// showMarkers shows the "Show earlier messages" button if lines are
// hidden, and the hint if the conversation is empty.
func (s *Screen) showMarkers() {
	if s.first > 0 {
		s.earlier.SetText(fmt.Sprintf("Show earlier messages (%d more)", s.first))
		s.earlier.Show()
	} else {
		s.earlier.Hide()
	}
	switch {
	case s.current == "" && len(s.peers) == 0:
		s.hint.Hide() // the screen says there are no friends
		return
	case s.current == "":
		s.hint.SetText(pickFirst + ".")
	case len(s.history) == 0:
		s.hint.SetText("No messages with " + clean(s.current) + " yet: say hello.")
	default:
		s.hint.Hide()
		return
	}
	s.hint.Show()
}

// toBottom scrolls to the newest line.
func (s *Screen) toBottom() {
	s.layoutLines()
	s.scroll.ScrollToBottom()
}

// layoutLines places the conversation's rows after some were added or
// replaced. Only those have their text wrapped: refreshing the
// conversation would wrap every line again.
func (s *Screen) layoutLines() {
	c := s.lines
	// New rows learn their width from a first pass, and so their wrapped
	// text's height, which a second pass gives them.
	c.Layout.Layout(c.Objects, c.Size())
	c.Layout.Layout(c.Objects, c.Size())
	c.Resize(c.MinSize().Max(s.scroll.Size()))
}

// who names a line's writer.
func (s *Screen) who(l Line) string {
	if l.Out {
		return you
	}
	return clean(s.current)
}

// when words a line's time: the time alone today, with the weekday within
// the last six days (a seventh would repeat today's), with the date
// otherwise, and the year only if it is not this one.
func (s *Screen) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	now := s.now()
	t = t.In(now.Location())
	// Whole days between the two dates, counted from noon to noon so a
	// daylight saving change does not tip the count.
	noon := func(x time.Time) time.Time {
		y, m, d := x.Date()
		return time.Date(y, m, d, 12, 0, 0, 0, x.Location())
	}
	days := int(math.Round(noon(now).Sub(noon(t)).Hours() / 24))
	switch {
	case days == 0:
		return t.Format("15:04")
	case days > 0 && days <= 6:
		return t.Format("Mon 15:04")
	case t.Year() == now.Year():
		return t.Format("2 Jan 15:04")
	}
	return t.Format("2 Jan 2006 15:04")
}

// clean makes text from a peer fit to show (wording.Shown).
func clean(text string) string { return wording.Shown(text, true) }

// row is one line of the conversation on screen.
type row struct {
	box    fyne.CanvasObject // the whole row
	header *fyne.Container
	out    bool
	who    *widget.Label
	when   *widget.Label
	text   *widget.Label
	mark   *widget.Icon  // Out lines: waiting or delivered
	status *widget.Label // the mark in words
}

// newRow builds the row showing l.
func (s *Screen) newRow(l Line) *row {
	r := &row{
		out:    l.Out,
		who:    widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		when:   widget.NewLabel(""),
		text:   widget.NewLabel(""),
		mark:   widget.NewIcon(nil),
		status: widget.NewLabel(""),
	}
	r.who.SizeName = theme.SizeNameCaptionText
	r.when.SizeName = theme.SizeNameCaptionText
	r.when.Importance = widget.LowImportance
	r.status.SizeName = theme.SizeNameCaptionText
	r.status.Importance = widget.LowImportance
	r.text.Wrapping = fyne.TextWrapWord
	r.header = container.NewHBox(r.who, r.when)
	if l.Out {
		r.header.Add(container.NewCenter(r.mark))
		r.header.Add(r.status)
	}
	r.set(l, s.who(l), s.when(l.Time))

	// The labels' own padding is space enough between header and text.
	r.box = newBubble(l.Out, container.New(layout.NewCustomPaddedVBoxLayout(-theme.Padding()), r.header, r.text))
	return r
}

// set shows l in the row, which is on l's side, and reports whether its
// text changed. Only what changed is set: setting a label wraps its text
// again.
func (r *row) set(l Line, who, when string) (textChanged bool) {
	status, mark := "", fyne.Resource(nil)
	switch {
	case l.Out && l.Delivered:
		status, mark = delivered, theme.NewSuccessThemedResource(theme.ConfirmIcon())
	case l.Out:
		status, mark = waiting, theme.HistoryIcon()
	}
	header := false
	for _, c := range []struct {
		label *widget.Label
		text  string
	}{{r.who, who}, {r.when, when}, {r.status, status}} {
		if c.label.Text != c.text {
			c.label.SetText(c.text)
			header = true
		}
	}
	if header {
		r.mark.SetResource(mark)
		r.header.Refresh() // its labels' widths changed
	}
	if text := clean(l.Text); text != r.text.Text {
		r.text.SetText(text)
		return true
	}
	return false
}

// bubble is a line's row: its content on a rounded background, pushed to
// the right for lines written here, to the left for lines received, in
// different colours. It is a widget so that its colour follows the theme.
type bubble struct {
	widget.BaseWidget
	out     bool
	content fyne.CanvasObject
}

func newBubble(out bool, content fyne.CanvasObject) *bubble {
	b := &bubble{out: out, content: content}
	b.ExtendBaseWidget(b)
	return b
}

// CreateRenderer draws the bubble.
func (b *bubble) CreateRenderer() fyne.WidgetRenderer {
	r := &bubbleRenderer{b: b, bg: canvas.NewRectangle(color.Transparent)}
	r.Refresh()
	return r
}

type bubbleRenderer struct {
	b  *bubble
	bg *canvas.Rectangle
}

func (r *bubbleRenderer) Layout(size fyne.Size) {
	pos := fyne.NewPos(0, 0)
	if r.b.out {
		pos.X = indent
	}
	size.Width -= indent
	r.bg.Move(pos)
	r.bg.Resize(size)
	r.b.content.Move(pos)
	r.b.content.Resize(size)
}

func (r *bubbleRenderer) MinSize() fyne.Size {
	return r.b.content.MinSize().AddWidthHeight(indent, 0)
}

// Refresh colours the background from the theme; the content is the
// content's own to refresh.
func (r *bubbleRenderer) Refresh() {
	th := r.b.Theme()
	name := theme.ColorNameInputBackground
	if r.b.out {
		name = theme.ColorNameSelection
	}
	r.bg.FillColor = th.Color(name, fyne.CurrentApp().Settings().ThemeVariant())
	r.bg.CornerRadius = th.Size(theme.SizeNameInputRadius)
	r.bg.Refresh()
}

func (r *bubbleRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.bg, r.b.content} }

func (r *bubbleRenderer) Destroy() {}
