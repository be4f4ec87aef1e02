package diag

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/netcore/node"
)

// Spacing of the chart.
const (
	cellMinWidth = 120
	cellPadY     = 5
	cellGap      = 6
	labelGap     = 14 // between the kinds and the first column
	cellRadius   = 6
)

// ReachChart shows, for each kind of router a friend may have, how this
// computer connects to them on each of its address families: directly,
// by hole punching, by guessing ports, or through a relay
// ([node.Reach]).
type ReachChart struct {
	widget.BaseWidget
	columns []chartColumn
}

// NewReachChart returns an empty chart; it fills in when a report with a
// profiled NAT is shown.
func NewReachChart() *ReachChart {
	c := &ReachChart{}
	c.ExtendBaseWidget(c)
	return c
}

// CreateRenderer draws the chart.
func (c *ReachChart) CreateRenderer() fyne.WidgetRenderer {
	r := &chartRenderer{c: c}
	r.build()
	return r
}

// chartRenderer lays the chart out as a table: the friend's kinds down
// the left, a column of coloured cells per family of this computer.
type chartRenderer struct {
	c       *ReachChart
	corner  *canvas.Text
	headers []*canvas.Text
	labels  []*canvas.Text
	cells   [][]*canvas.Rectangle // [row][column]
	texts   [][]*canvas.Text
	objects []fyne.CanvasObject
}

func (r *chartRenderer) build() {
	fg := theme.Color(theme.ColorNameForeground)
	bold := func(s string) *canvas.Text {
		t := canvas.NewText(s, fg)
		t.TextStyle.Bold = true
		return t
	}
	r.corner = bold("Your friend's router")
	r.headers, r.labels, r.cells, r.texts = nil, nil, nil, nil
	for _, col := range r.c.columns {
		t := bold(col.title)
		t.Alignment = fyne.TextAlignCenter
		r.headers = append(r.headers, t)
	}
	for _, k := range friendKinds {
		r.labels = append(r.labels, canvas.NewText(k.name, fg))
		var cells []*canvas.Rectangle
		var texts []*canvas.Text
		for _, col := range r.c.columns {
			path := node.Reach(col.me, k.profile)
			c := levelColor(pathLevel(path))
			rect := canvas.NewRectangle(tint(c, 0x55))
			rect.StrokeColor, rect.StrokeWidth, rect.CornerRadius = c, 1, cellRadius
			t := canvas.NewText(pathText(path), fg)
			t.Alignment = fyne.TextAlignCenter
			t.TextStyle.Bold = path == node.PathDirect
			cells, texts = append(cells, rect), append(texts, t)
		}
		r.cells, r.texts = append(r.cells, cells), append(r.texts, texts)
	}
	r.objects = []fyne.CanvasObject{r.corner}
	for _, h := range r.headers {
		r.objects = append(r.objects, h)
	}
	for i, l := range r.labels {
		r.objects = append(r.objects, l)
		for j := range r.cells[i] {
			r.objects = append(r.objects, r.cells[i][j], r.texts[i][j])
		}
	}
}

// labelWidth is the left column's width; cellWidth each cell's.
func (r *chartRenderer) labelWidth() float32 {
	w := r.corner.MinSize().Width
	for _, l := range r.labels {
		w = max(w, l.MinSize().Width)
	}
	return w
}

func (r *chartRenderer) cellWidth() float32 {
	w := float32(cellMinWidth)
	for _, h := range r.headers {
		w = max(w, h.MinSize().Width+2*cellGap)
	}
	return w
}

func (r *chartRenderer) rowHeight() float32 {
	return r.corner.MinSize().Height + 2*cellPadY
}

// MinSize fits the labels, a cell per column and a row per kind.
func (r *chartRenderer) MinSize() fyne.Size {
	n := float32(len(r.headers))
	return fyne.NewSize(r.labelWidth()+labelGap+n*(r.cellWidth()+cellGap), float32(len(r.labels)+1)*(r.rowHeight()+cellGap))
}

// Layout keeps the table at its natural width, left-aligned: stretched
// cells would be harder to read across.
func (r *chartRenderer) Layout(fyne.Size) {
	lw, cw, rh := r.labelWidth(), r.cellWidth(), r.rowHeight()
	textH := r.corner.MinSize().Height
	put := func(t *canvas.Text, x, y, w float32) {
		t.Move(fyne.NewPos(x, y+(rh-textH)/2))
		t.Resize(fyne.NewSize(w, textH))
	}
	put(r.corner, 0, 0, lw)
	for j, h := range r.headers {
		put(h, lw+labelGap+float32(j)*(cw+cellGap), 0, cw)
	}
	for i, l := range r.labels {
		y := float32(i+1) * (rh + cellGap)
		put(l, 0, y, lw)
		for j, cell := range r.cells[i] {
			x := lw + labelGap + float32(j)*(cw+cellGap)
			cell.Move(fyne.NewPos(x, y))
			cell.Resize(fyne.NewSize(cw, rh))
			put(r.texts[i][j], x, y, cw)
		}
	}
}

// Refresh rebuilds the chart for the widget's columns (or theme).
func (r *chartRenderer) Refresh() {
	r.build()
	r.Layout(r.c.Size())
	canvas.Refresh(r.c)
}

func (r *chartRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *chartRenderer) Destroy() {}
