package diag

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Spacing of the picture.
const (
	columnGapMin = 18 // between columns, where the wires run
	rowGap       = 8  // between boxes of a column
	captionGap   = 4  // under the column captions
	edge         = 2  // around it all, so outlines are not clipped
)

// PathPicture draws the path from this computer to the servers: its
// interfaces, the router (or firewall) of each address family with its
// NAT behaviour, the internet, and each STUN, TURN, MQTT and NTP server
// with its round trip, every part coloured green, amber or red.
type PathPicture struct {
	widget.BaseWidget
	pic picture
}

// NewPathPicture returns a picture of an unchecked path: this computer
// and the internet.
func NewPathPicture() *PathPicture {
	p := &PathPicture{pic: pictureOf(nil)}
	p.ExtendBaseWidget(p)
	return p
}

// set shows a new picture; call it on the UI goroutine.
func (p *PathPicture) set(pic picture) {
	p.pic = pic
	p.Refresh()
}

// CreateRenderer draws the picture.
func (p *PathPicture) CreateRenderer() fyne.WidgetRenderer {
	r := &pictureRenderer{p: p}
	r.build()
	return r
}

// pictureRenderer places the picture's boxes in five columns (computer,
// interfaces, routers, internet, servers) joined by wires.
type pictureRenderer struct {
	p        *PathPicture
	captions [5]*canvas.Text
	computer *boxObj
	ifaces   []*boxObj
	gateways [][]*boxObj // per interface
	internet *boxObj
	servers  []*boxObj
	wires    []wire
	objects  []fyne.CanvasObject
}

// build makes the canvas objects for the widget's picture.
func (r *pictureRenderer) build() {
	pic := r.p.pic
	r.computer = newBoxObj(pic.computer, false)
	r.internet = newBoxObj(pic.internet, true)
	r.ifaces, r.gateways, r.servers, r.wires = nil, nil, nil, nil
	for _, ib := range pic.ifaces {
		io := newBoxObj(ib.box, false)
		r.ifaces = append(r.ifaces, io)
		r.wires = append(r.wires, newWire(r.computer, io, Note))
		var gws []*boxObj
		for _, g := range ib.gateways {
			gw := newBoxObj(g, false)
			gws = append(gws, gw)
			r.wires = append(r.wires, newWire(io, gw, Note), newWire(gw, r.internet, g.level))
		}
		r.gateways = append(r.gateways, gws)
	}
	for _, s := range pic.servers {
		so := newBoxObj(s, false)
		r.servers = append(r.servers, so)
		r.wires = append(r.wires, newWire(r.internet, so, s.level))
	}
	for i, c := range []string{"your computer", "network", "router", "", "servers"} {
		t := canvas.NewText(c, theme.Color(theme.ColorNamePlaceHolder))
		t.TextSize = theme.CaptionTextSize()
		r.captions[i] = t
	}

	r.objects = r.objects[:0]
	for _, w := range r.wires {
		r.objects = append(r.objects, w.line)
	}
	for _, c := range r.captions {
		r.objects = append(r.objects, c)
	}
	for _, b := range r.allBoxes() {
		r.objects = append(r.objects, b.objects()...)
	}
}

func (r *pictureRenderer) allBoxes() []*boxObj {
	all := append([]*boxObj{r.computer, r.internet}, r.ifaces...)
	for _, g := range r.gateways {
		all = append(all, g...)
	}
	return append(all, r.servers...)
}

// columns returns each column's boxes.
func (r *pictureRenderer) columns() [5][]*boxObj {
	var gws []*boxObj
	for _, g := range r.gateways {
		gws = append(gws, g...)
	}
	return [5][]*boxObj{{r.computer}, r.ifaces, gws, {r.internet}, r.servers}
}

// widths returns each column's width: its widest box's.
func (r *pictureRenderer) widths() (w [5]float32) {
	for i, col := range r.columns() {
		for _, b := range col {
			w[i] = max(w[i], b.MinSize().Width)
		}
	}
	return w
}

// stack is the height of boxes stacked with gaps between them.
func stack(boxes []*boxObj) float32 {
	var h float32
	for i, b := range boxes {
		if i > 0 {
			h += rowGap
		}
		h += b.MinSize().Height
	}
	return h
}

func (r *pictureRenderer) captionHeight() float32 {
	return r.captions[0].MinSize().Height + captionGap
}

// MinSize fits every column side by side and the tallest one.
func (r *pictureRenderer) MinSize() fyne.Size {
	var w, h float32
	for i, cw := range r.widths() {
		w += cw
		if i > 0 {
			w += columnGapMin
		}
	}
	for _, col := range r.columns() {
		h = max(h, stack(col))
	}
	// An interface box spans its routers, and may be the taller.
	h = max(h, stack(r.ifaces))
	return fyne.NewSize(w+2*edge, h+r.captionHeight()+2*edge)
}

// Layout spreads the columns over the width and centres each column's
// boxes vertically; an interface sits level with its routers.
func (r *pictureRenderer) Layout(size fyne.Size) {
	widths := r.widths()
	var used float32
	for _, w := range widths {
		used += w
	}
	gap := max(columnGapMin, (size.Width-2*edge-used)/4)
	top := edge + r.captionHeight()
	height := size.Height - top - edge
	x := [5]float32{edge}
	for i := 1; i < 5; i++ {
		x[i] = x[i-1] + widths[i-1] + gap
	}
	for i, c := range r.captions {
		c.Move(fyne.NewPos(x[i], edge))
		c.Resize(fyne.NewSize(widths[i], c.MinSize().Height))
	}
	centre := func(col int, boxes []*boxObj) {
		y := top + (height-stack(boxes))/2
		for _, b := range boxes {
			h := b.MinSize().Height
			b.place(fyne.NewPos(x[col], y), fyne.NewSize(widths[col], h))
			y += h + rowGap
		}
	}
	centre(0, []*boxObj{r.computer})
	centre(2, r.columns()[2])
	centre(3, []*boxObj{r.internet})
	centre(4, r.servers)
	// Each interface level with the middle of its routers; an interface
	// without any is stacked after the previous one.
	y := top
	for i, ib := range r.ifaces {
		h := ib.MinSize().Height
		if gws := r.gateways[i]; len(gws) > 0 {
			mid := (gws[0].pos.Y + gws[len(gws)-1].pos.Y + gws[len(gws)-1].size.Height) / 2
			y = max(y, mid-h/2)
		}
		ib.place(fyne.NewPos(x[1], y), fyne.NewSize(widths[1], h))
		y += h + rowGap
	}
	for _, w := range r.wires {
		w.place()
	}
}

// Refresh rebuilds the drawing for the widget's picture (or theme).
func (r *pictureRenderer) Refresh() {
	r.build()
	r.Layout(r.p.Size())
	canvas.Refresh(r.p)
}

func (r *pictureRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *pictureRenderer) Destroy() {}
