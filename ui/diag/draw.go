package diag

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
)

// Colours of the levels: green, amber, red, and a quiet blue-grey for
// what is neither good nor bad. Mid-tones, so they read on light and dark
// themes alike.
var (
	colorGood = color.NRGBA{R: 0x2e, G: 0x9d, B: 0x48, A: 0xff}
	colorFair = color.NRGBA{R: 0xe8, G: 0x9a, B: 0x0c, A: 0xff}
	colorPoor = color.NRGBA{R: 0xd6, G: 0x3b, B: 0x3b, A: 0xff}
	colorNote = color.NRGBA{R: 0x6b, G: 0x7f, B: 0x99, A: 0xff}
)

func levelColor(l Level) color.NRGBA {
	switch l {
	case Good:
		return colorGood
	case Fair:
		return colorFair
	case Poor:
		return colorPoor
	}
	return colorNote
}

// tint is c made translucent, to fill a shape whose outline is c.
func tint(c color.NRGBA, alpha uint8) color.NRGBA {
	c.A = alpha
	return c
}

// Sizes in the drawings.
const (
	boxPad    = 8    // inside a box, around its text
	dotSize   = 9    // the status dot before a box's title
	dotGap    = 6    // between the dot and the title
	lineGap   = 1    // between a box's lines
	fillAlpha = 0x2a // a box's fill over the background
	wireWidth = 2
)

// boxObj is a box of the drawings as canvas objects: a rounded rectangle
// (or a circle) outlined in the level's colour, a status dot, a bold
// title and smaller lines under it.
type boxObj struct {
	shape  fyne.CanvasObject
	dot    *canvas.Circle
	title  *canvas.Text
	lines  []*canvas.Text
	circle bool
	level  Level

	pos  fyne.Position // where Layout put it
	size fyne.Size
}

func newBoxObj(b box, circle bool) *boxObj {
	c := levelColor(b.level)
	fg := theme.Color(theme.ColorNameForeground)
	o := &boxObj{dot: canvas.NewCircle(c), title: canvas.NewText(b.title, fg), circle: circle, level: b.level}
	if circle {
		e := canvas.NewCircle(tint(c, fillAlpha))
		e.StrokeColor, e.StrokeWidth = c, wireWidth
		o.shape = e
		o.title.Alignment = fyne.TextAlignCenter
	} else {
		r := canvas.NewRectangle(tint(c, fillAlpha))
		r.StrokeColor, r.StrokeWidth, r.CornerRadius = c, 1.5, 8
		o.shape = r
	}
	o.title.TextStyle.Bold = true
	o.title.TextSize = theme.TextSize() - 1
	for _, l := range b.lines {
		t := canvas.NewText(l, fg)
		t.TextSize = theme.CaptionTextSize()
		if circle {
			t.Alignment = fyne.TextAlignCenter
		}
		o.lines = append(o.lines, t)
	}
	return o
}

func (o *boxObj) objects() []fyne.CanvasObject {
	objs := []fyne.CanvasObject{o.shape}
	if o.hasDot() {
		objs = append(objs, o.dot)
	}
	objs = append(objs, o.title)
	for _, l := range o.lines {
		objs = append(objs, l)
	}
	return objs
}

// hasDot says whether the box shows a status dot: a circle has no room
// for one, and a box of no status needs none.
func (o *boxObj) hasDot() bool { return !o.circle && o.level != Note }

// indent is where the text starts, after the dot.
func (o *boxObj) indent() float32 {
	if !o.hasDot() {
		return 0
	}
	return dotSize + dotGap
}

// textSize is the size of the title and lines together.
func (o *boxObj) textSize() fyne.Size {
	s := o.title.MinSize()
	for _, l := range o.lines {
		m := l.MinSize()
		s = fyne.NewSize(max(s.Width, m.Width), s.Height+lineGap+m.Height)
	}
	return s
}

// MinSize is the smallest size that shows all of the box's text; a
// circle is as wide as its text and as tall as it is wide.
func (o *boxObj) MinSize() fyne.Size {
	t := o.textSize()
	if o.circle {
		return fyne.NewSquareSize(max(t.Width, t.Height) + 2*boxPad)
	}
	return fyne.NewSize(o.indent()+t.Width+2*boxPad, t.Height+2*boxPad)
}

// place puts the box at pos with size, its text centred vertically.
func (o *boxObj) place(pos fyne.Position, size fyne.Size) {
	o.pos, o.size = pos, size
	o.shape.Move(pos)
	o.shape.Resize(size)
	t := o.textSize()
	x := pos.X + boxPad + o.indent()
	w := size.Width - 2*boxPad - o.indent()
	y := pos.Y + (size.Height-t.Height)/2
	th := o.title.MinSize().Height
	o.dot.Move(fyne.NewPos(pos.X+boxPad, y+(th-dotSize)/2))
	o.dot.Resize(fyne.NewSquareSize(dotSize))
	o.title.Move(fyne.NewPos(x, y))
	o.title.Resize(fyne.NewSize(w, th))
	y += th
	for _, l := range o.lines {
		h := l.MinSize().Height
		y += lineGap
		l.Move(fyne.NewPos(x, y))
		l.Resize(fyne.NewSize(w, h))
		y += h
	}
}

// left and right are the middles of the box's sides, where wires end.
func (o *boxObj) left() fyne.Position { return fyne.NewPos(o.pos.X, o.pos.Y+o.size.Height/2) }
func (o *boxObj) right() fyne.Position {
	return fyne.NewPos(o.pos.X+o.size.Width, o.pos.Y+o.size.Height/2)
}

// wire is a line from one box's right side to another's left side.
type wire struct {
	line     *canvas.Line
	from, to *boxObj
}

func newWire(from, to *boxObj, l Level) wire {
	line := canvas.NewLine(levelColor(l))
	line.StrokeWidth = wireWidth
	return wire{line, from, to}
}

// place draws the wire between where its boxes were put.
func (w wire) place() {
	w.line.Position1, w.line.Position2 = w.from.right(), w.to.left()
}
