// Package diag is P2PD's Diagnostics screen: a picture of the path from
// this computer through its routers to the servers P2PD uses, a chart of
// which friends it reaches directly, its interfaces and routes, and each
// finding of the network check explained in a sentence. It shows a
// [netcheck.Report]; the app runs the check and hands the report over.
package diag

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/netcore/netcheck"
)

// Screen is the Diagnostics screen. Put Content in a window or tab; call
// its methods on the UI goroutine (inside fyne.Do from elsewhere).
type Screen struct {
	// OnRun is called on the UI goroutine when the user asks to run the
	// check again; the screen shows "Checking…" until the app calls Show
	// with the result. The check takes seconds, so run it elsewhere:
	//
	//	s.OnRun = func() {
	//		go func() {
	//			r := netcheck.Run(ctx, cfg, netcheck.Options{})
	//			fyne.Do(func() { s.Show(r) })
	//		}()
	//	}
	OnRun func()

	report  *netcheck.Report
	running bool

	root     fyne.CanvasObject
	body     *fyne.Container
	status   *widget.Label
	spinner  *widget.ProgressBarInfinite
	run      *widget.Button
	copy     *widget.Button
	banner   *fyne.Container
	bannerBg *canvas.Rectangle
	trouble  *widget.Label
	verdict  *widget.Label
	picture  *PathPicture
	chart    *ReachChart
	noChart  *widget.Label
	findings *fyne.Container
	ifaces   *widget.Label
}

// New builds the screen with no report yet: press Run again, or have the
// app run the check and call Show.
func New() *Screen {
	s := &Screen{
		status:   widget.NewLabel("Not checked yet."),
		spinner:  widget.NewProgressBarInfinite(),
		trouble:  wrapped(""),
		verdict:  wrapped("Press Run again to check your network."),
		picture:  NewPathPicture(),
		chart:    NewReachChart(),
		noChart:  wrapped("Once P2PD knows what your router does, this shows which friends you reach directly."),
		findings: container.NewVBox(),
		ifaces:   widget.NewLabel(""),
	}
	s.verdict.TextStyle.Bold = true
	s.spinner.Hide()
	s.run = widget.NewButtonWithIcon("Run again", theme.ViewRefreshIcon(), s.runAgain)
	s.run.Importance = widget.HighImportance
	s.copy = widget.NewButtonWithIcon("Copy report", theme.ContentCopyIcon(), s.copyReport)
	s.copy.Disable()
	s.bannerBg = canvas.NewRectangle(tint(colorPoor, fillAlpha))
	s.bannerBg.CornerRadius = theme.InputRadiusSize()
	s.banner = container.NewStack(s.bannerBg, container.NewPadded(s.trouble))
	s.banner.Hide()

	title := widget.NewLabel("Network diagnostics")
	title.SizeName = theme.SizeNameHeadingText
	title.TextStyle.Bold = true
	header := container.NewBorder(nil, nil, title, container.NewHBox(s.run, s.copy))
	s.body = container.NewVBox(
		s.banner,
		s.verdict,
		heading("The way to your friends"),
		container.NewHScroll(s.picture),
		heading("Who can you reach directly?"),
		s.noChart,
		s.chart,
		legend(),
		heading("What P2PD found"),
		s.findings,
		heading("Interfaces and routes"),
		s.ifaces,
	)
	s.chart.Hide()
	top := container.NewVBox(header, container.NewBorder(nil, nil, nil, s.status, s.spinner))
	s.root = container.NewBorder(top, nil, nil, nil, container.NewVScroll(container.NewPadded(s.body)))
	return s
}

// Content is what to put in a window or tab.
func (s *Screen) Content() fyne.CanvasObject { return s.root }

// Checking shows that a check is running: until Show, Run again waits
// and the previous report (if any) stays in view.
func (s *Screen) Checking() {
	s.running = true
	s.status.SetText("Checking…")
	s.spinner.Show()
	s.spinner.Start()
	s.run.Disable()
}

// Show shows the check's report; nil means the check did not finish.
func (s *Screen) Show(r *netcheck.Report) {
	s.running = false
	s.spinner.Stop()
	s.spinner.Hide()
	s.run.Enable()
	s.report = r
	if r == nil {
		s.status.SetText("The check did not finish.")
		s.copy.Disable()
	} else {
		s.status.SetText(fmt.Sprintf("Checked at %s in %v.", r.Started.Format("15:04"), r.Took.Round(100*time.Millisecond)))
		s.copy.Enable()
	}

	level, trouble := Trouble(r)
	s.trouble.SetText(trouble)
	s.bannerBg.FillColor = tint(levelColor(level), fillAlpha)
	s.bannerBg.StrokeColor = levelColor(level)
	s.bannerBg.StrokeWidth = 1
	s.banner.Hidden = trouble == ""

	switch {
	case r == nil:
		s.verdict.SetText("")
	default:
		s.verdict.SetText(r.Verdict)
	}
	s.picture.set(pictureOf(r))
	// The body's refresh below redraws the banner, chart and findings,
	// once each.
	s.chart.columns = chartColumns(r)
	s.chart.Hidden = len(s.chart.columns) == 0
	s.noChart.Hidden = !s.chart.Hidden
	s.findings.Objects = nil
	for _, f := range Findings(r) {
		s.findings.Objects = append(s.findings.Objects, findingRow(f))
	}
	s.ifaces.SetText(describeInterfaces(r))
	s.body.Refresh()
}

func (s *Screen) runAgain() {
	if s.running {
		return
	}
	s.Checking()
	if s.OnRun != nil {
		s.OnRun()
	}
}

// copyReport puts the report, as JSON, on the clipboard: what a person
// pastes into a bug report or a chat with whoever helps them.
func (s *Screen) copyReport() {
	if s.report == nil {
		return
	}
	b, err := json.MarshalIndent(s.report, "", "  ")
	if err != nil {
		s.status.SetText("Could not copy the report: " + err.Error())
		return
	}
	fyne.CurrentApp().Clipboard().SetContent(string(b))
	s.status.SetText("Report copied: paste it wherever you ask for help.")
}

func wrapped(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}

func heading(text string) fyne.CanvasObject {
	l := widget.NewLabel(text)
	l.SizeName = theme.SizeNameSubHeadingText
	l.TextStyle.Bold = true
	return l
}

// legend says what the chart's words mean.
func legend() fyne.CanvasObject {
	return container.NewVBox(
		findingRow(Finding{Good, "direct: your computers connect straight away; punch: P2PD opens a way through both routers at once (hole punching)."}),
		findingRow(Finding{Fair, "punch (guessing): P2PD guesses the friend's router's ports; it may take a second, or fall back to a relay."}),
		findingRow(Finding{Poor, "relay: the connection goes through a relay server. It works, but more slowly."}),
	)
}

// findingRow is a sentence with a dot of its level's colour.
func findingRow(f Finding) fyne.CanvasObject {
	dot := canvas.NewCircle(levelColor(f.Level))
	// The dot sits level with the first line of text: the label pads its
	// text by the inner padding.
	pad := theme.InnerPadding() + (theme.TextSize()-dotSize)/2 + 2
	at := container.New(layout.NewCustomPaddedLayout(pad, 0, theme.Padding(), 0),
		container.NewGridWrap(fyne.NewSquareSize(dotSize), dot))
	return container.NewBorder(nil, nil, container.NewVBox(at), nil, wrapped(f.Text))
}

// describeInterfaces lists each interface's routes: the local addresses
// and what they appear as on the internet.
func describeInterfaces(r *netcheck.Report) string {
	if r == nil {
		return ""
	}
	if len(r.Interfaces) == 0 {
		return "No interface leads to the internet."
	}
	var b strings.Builder
	for i, ifc := range r.Interfaces {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(ifc.Name)
		if ifc.Default {
			b.WriteString(" (default route)")
		}
		b.WriteString("\n")
		routes := ifc.Routes
		if len(routes) == 0 {
			b.WriteString("    no routes found\n")
		}
		for _, rt := range routes {
			fmt.Fprintf(&b, "    %v  %s", rt.Family, joinAddrs(rt.NIC))
			switch {
			case len(rt.External) == 0:
				b.WriteString("  →  public address unknown")
			case len(rt.NIC) == 1 && len(rt.External) == 1 && rt.NIC[0] == rt.External[0]:
				b.WriteString("  (its own public address)")
			default:
				b.WriteString("  →  " + joinAddrs(rt.External))
			}
			if len(rt.LinkLocal) > 0 {
				b.WriteString("  ·  link-local " + joinAddrs(rt.LinkLocal))
			}
			b.WriteString("\n")
		}
		for _, f := range ifc.Families {
			if f.Error != "" {
				fmt.Fprintf(&b, "    %v: %s\n", f.Family, f.Error)
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func joinAddrs[A fmt.Stringer](as []A) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
