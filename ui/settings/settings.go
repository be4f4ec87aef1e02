// Package settings is the app's Settings screen: the servers P2PD relies
// on (STUN, MQTT, TURN, NTP), the folder received files go to, the
// network options (port forwarding, relaying), notifications and the
// theme. It shows what the app hands it, checks what the user typed with
// the config package's own parsing, and calls back to save; it keeps no
// state of its own beyond what is on screen.
package settings

import (
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/netcore/config"
	"p2pd/ui/wording"
)

// Values are the settings the screen edits.
type Values struct {
	Config        config.Config // servers: STUN, MQTT, TURN, NTP
	DownloadDir   string
	UPnP          bool   // ask the router to forward a port (UPnP / NAT-PMP)
	Relay         bool   // allow relaying through TURN when nothing direct works
	Notifications bool   // system notifications for messages and offers while the window is not focused
	Theme         string // "system", "light" or "dark"
}

// A server list shows at least minRows lines, and grows up to maxRows
// before it scrolls inside.
const minRows, maxRows = 3, 8

// The theme choices: the radio's labels, in order, and the values they
// stand for.
var (
	themeLabels = []string{"System", "Light", "Dark"}
	themeValues = map[string]string{"System": "system", "Light": "light", "Dark": "dark"}
)

// Screen is the Settings screen. Create it with New, put Content in a
// window or tab, and call its methods on the UI goroutine. It is not a
// widget itself: a widget's Show() would clash with Show(Values), so, as
// the Diagnostics screen does, it hands out its Content.
type Screen struct {
	// OnSave stores v; a returned error is shown (in words) and nothing on
	// screen is lost.
	OnSave func(v Values) error
	// OnDefaults returns the built-in settings; "Restore defaults" shows
	// them (unsaved until Save).
	OnDefaults func() Values

	win   fyne.Window
	stun  *widget.Entry
	mqtt  *widget.Entry
	turn  *widget.Entry
	ntp   *widget.Entry
	dir   *widget.Entry
	pick  *widget.Button
	upnp  *widget.Check
	relay *widget.Check
	notif *widget.Check
	theme *widget.RadioGroup

	// shownPass holds the TURN passwords Show hid, by URL and user.
	shownPass map[turnLogin]string

	status   *widget.Label // the last Save's outcome
	save     *widget.Button
	defaults *widget.Button
	root     fyne.CanvasObject
}

// New builds the screen; win is the window its folder dialog opens over.
func New(win fyne.Window) *Screen {
	s := &Screen{win: win}
	servers := func(placeholder string) *widget.Entry {
		e := widget.NewMultiLineEntry()
		e.TextStyle = fyne.TextStyle{Monospace: true}
		e.SetPlaceHolder(placeholder)
		e.SetMinRowsVisible(minRows)
		e.OnChanged = func(text string) {
			// The entry grows with its list, so the page scrolls rather
			// than a box inside it.
			e.SetMinRowsVisible(min(max(strings.Count(text, "\n")+1, minRows), maxRows))
			s.edited()
		}
		return e
	}
	s.stun = servers("udp://stun.example.net:3478")
	s.mqtt = servers("tcp://broker.example.net:1883")
	s.turn = servers("turn:203.0.113.1:3478 user password realm")
	s.ntp = servers("pool.ntp.org")
	s.dir = widget.NewEntry()
	s.dir.SetPlaceHolder("The folder received files go to")
	s.dir.OnChanged = func(string) { s.edited() }
	s.pick = widget.NewButtonWithIcon("Choose…", theme.FolderOpenIcon(), s.chooseFolder)
	check := func(text string) *widget.Check {
		return widget.NewCheck(text, func(bool) { s.edited() })
	}
	s.upnp = check("Forward a port on my router (UPnP / NAT-PMP)")
	s.relay = check("Relay through TURN when nothing direct works")
	s.notif = check("Notifications when the window is in the background")
	s.theme = widget.NewRadioGroup(themeLabels, func(string) { s.edited() })
	s.theme.Horizontal = true
	s.theme.Required = true // a theme is always chosen: tapping it again keeps it

	s.status = widget.NewLabel("")
	s.status.Wrapping = fyne.TextWrapWord
	s.status.Hide()
	s.save = widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), s.saveTapped)
	s.save.Importance = widget.HighImportance
	s.defaults = widget.NewButtonWithIcon("Restore defaults", theme.HistoryIcon(), s.restoreDefaults)

	s.root = s.layout()
	s.theme.SetSelected(themeLabels[0])
	return s
}

// Content is what to put in a window or tab.
func (s *Screen) Content() fyne.CanvasObject { return s.root }

// layout lays the screen out: the form scrolls, and the buttons with the
// last Save's outcome stay in view below it.
func (s *Screen) layout() fyne.CanvasObject {
	title := func(t string) *widget.Label {
		l := widget.NewLabelWithStyle(t, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		l.SizeName = theme.SizeNameSubHeadingText
		return l
	}
	// Hints wrap (a FormItem's HintText does not), so a narrow window
	// scrolls down rather than growing sideways.
	hinted := func(o fyne.CanvasObject, hint string) fyne.CanvasObject {
		l := widget.NewLabel(hint)
		l.Wrapping = fyne.TextWrapWord
		l.Importance = widget.LowImportance
		l.SizeName = theme.SizeNameCaptionText
		return container.NewVBox(o, l)
	}
	servers := widget.NewForm(
		widget.NewFormItem("STUN", hinted(s.stun, "One per line: udp://host:port or tcp://host:port (port 3478 if left out).")),
		widget.NewFormItem("MQTT", hinted(s.mqtt, "One per line: tcp://host:port (port 1883 if left out).")),
		widget.NewFormItem("TURN", hinted(s.turn, `One per line: URL user password [realm], e.g. turn:203.0.113.1:3478 test secret natlab. `+
			`Add ?transport=tcp to the URL for TCP; the URL alone for a relay without a login; "" for an empty word, and quotes around a word with spaces. `+
			`A saved password shows as `+hiddenPass+`: leave it so to keep it.`)),
		widget.NewFormItem("NTP", hinted(s.ntp, "One per line: host or host:port (port 123 if left out).")),
	)
	downloads := widget.NewForm(widget.NewFormItem("Folder", container.NewBorder(nil, nil, nil, s.pick, s.dir)))
	app := widget.NewForm(widget.NewFormItem("Theme", s.theme))
	body := container.NewVBox(
		title("Servers"), servers, widget.NewSeparator(),
		title("Downloads"), downloads, widget.NewSeparator(),
		title("Network"), s.upnp, s.relay, widget.NewSeparator(),
		title("App"), s.notif, app,
	)
	bottom := container.NewVBox(widget.NewSeparator(), s.status, container.NewHBox(s.defaults, layout.NewSpacer(), s.save))
	return container.NewBorder(nil, container.NewPadded(bottom), nil, nil,
		container.NewVScroll(container.NewPadded(body)))
}

// Show fills the form with v (what is saved now). An empty Theme shows as
// System.
func (s *Screen) Show(v Values) {
	s.stun.SetText(strings.Join(v.Config.STUN, "\n"))
	s.mqtt.SetText(strings.Join(v.Config.MQTT, "\n"))
	turns := make([]string, 0, len(v.Config.TURN))
	s.shownPass = map[turnLogin]string{}
	for _, t := range v.Config.TURN {
		if t.Pass != "" {
			s.shownPass[turnLogin{t.URL, t.User}] = t.Pass
			t.Pass = hiddenPass // not on screen for whoever looks on
		}
		turns = append(turns, turnLine(t))
	}
	s.turn.SetText(strings.Join(turns, "\n"))
	s.ntp.SetText(strings.Join(v.Config.NTP, "\n"))
	s.dir.SetText(v.DownloadDir)
	s.upnp.SetChecked(v.UPnP)
	s.relay.SetChecked(v.Relay)
	s.notif.SetChecked(v.Notifications)
	label := ""
	for l, val := range themeValues {
		if val == v.Theme || (v.Theme == "" && val == "system") {
			label = l
		}
	}
	// An unknown theme leaves none chosen, and Save asks for one rather
	// than quietly changing it.
	s.theme.SetSelected(label)
	s.setStatus("", widget.MediumImportance)
}

// fieldError is a mistake in one field, for the user to fix there.
type fieldError struct {
	entry *widget.Entry
	line  int // 1-based, counting blank lines; 0: the field as a whole
	err   error
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// Values reads the form; an error names the field and the line that is
// wrong (e.g. `STUN line 2 "udp//x": ...`).
func (s *Screen) Values() (Values, error) {
	var v Values
	var err error
	if v.Config.STUN, err = s.endpoints("STUN", s.stun, func(line string) error {
		_, err := config.Config{STUN: []string{line}}.STUNEndpoints()
		return err
	}); err != nil {
		return Values{}, err
	}
	if v.Config.MQTT, err = s.endpoints("MQTT", s.mqtt, func(line string) error {
		_, err := config.Config{MQTT: []string{line}}.MQTTEndpoints()
		return err
	}); err != nil {
		return Values{}, err
	}
	if v.Config.TURN, err = s.turns(); err != nil {
		return Values{}, err
	}
	if v.Config.NTP, err = s.endpoints("NTP", s.ntp, func(line string) error {
		_, err := config.Config{NTP: []string{line}}.NTPEndpoints()
		return err
	}); err != nil {
		return Values{}, err
	}
	// Each line passed on its own; the whole is checked too, so this
	// screen never hands on a config the config package would refuse.
	if err := v.Config.Validate(); err != nil {
		return Values{}, err
	}

	v.DownloadDir = strings.TrimSpace(s.dir.Text)
	if v.DownloadDir == "" {
		return Values{}, &fieldError{entry: s.dir, err: errors.New("the download folder is empty: choose the folder received files go to")}
	}
	v.UPnP = s.upnp.Checked
	v.Relay = s.relay.Checked
	v.Notifications = s.notif.Checked
	var ok bool
	if v.Theme, ok = themeValues[s.theme.Selected]; !ok {
		return Values{}, errors.New("no theme is chosen: choose System, Light or Dark")
	}
	return v, nil
}

// lines returns e's lines, trimmed, with their 1-based numbers as the user
// sees them; blank lines are skipped but counted.
func lines(e *widget.Entry) (text []string, numbers []int) {
	for i, l := range strings.Split(e.Text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			text = append(text, l)
			numbers = append(numbers, i+1)
		}
	}
	return text, numbers
}

// endpoints reads a one-address-per-line field, checking each line with
// check (the config package's parser, fed that line alone).
func (s *Screen) endpoints(field string, e *widget.Entry, check func(string) error) ([]string, error) {
	list, numbers := lines(e)
	for i, l := range list {
		if err := check(l); err != nil {
			// The config package names the list and index ("stun"[0] = …);
			// the cause under it is what the user needs, with the line.
			if cause := errors.Unwrap(err); cause != nil {
				err = cause
			}
			return nil, &fieldError{entry: e, line: numbers[i], err: fmt.Errorf("%s line %d %q: %w", field, numbers[i], l, err)}
		}
	}
	return list, nil
}

// hiddenPass stands for a saved TURN password on screen.
const hiddenPass = "••••••"

// turnLogin is a TURN server and a user on it: what a hidden password
// belongs to.
type turnLogin struct{ url, user string }

// turns reads the TURN field: `URL [user password [realm]]` a line; a
// hidden password is the one saved for the same URL and user.
func (s *Screen) turns() ([]config.TURN, error) {
	list, numbers := lines(s.turn)
	var out []config.TURN
	for i, l := range list {
		wrong := func(err error) error {
			return &fieldError{entry: s.turn, line: numbers[i], err: fmt.Errorf("TURN line %d: %w", numbers[i], err)}
		}
		w, err := words(l)
		if err != nil {
			return nil, wrong(err)
		}
		var t config.TURN
		switch len(w) {
		case 1:
			t = config.TURN{URL: w[0]}
		case 2:
			return nil, wrong(errors.New("a user name needs a password after it (URL user password [realm])"))
		case 3:
			t = config.TURN{URL: w[0], User: w[1], Pass: w[2]}
		case 4:
			t = config.TURN{URL: w[0], User: w[1], Pass: w[2], Realm: w[3]}
		default:
			return nil, wrong(fmt.Errorf("%d words, want at most 4: URL user password realm (put quotes around a word with spaces)", len(w)))
		}
		if _, err := t.Endpoint(); err != nil {
			return nil, &fieldError{entry: s.turn, line: numbers[i], err: fmt.Errorf("TURN line %d %q: %w", numbers[i], t.URL, err)}
		}
		if t.Pass == hiddenPass {
			pass, ok := s.shownPass[turnLogin{t.URL, t.User}]
			if !ok {
				return nil, wrong(fmt.Errorf("type the password for %s at %s: the hidden one was saved for another server or user", t.User, t.URL))
			}
			t.Pass = pass
		}
		out = append(out, t)
	}
	return out, nil
}

// saveTapped checks the form and hands it to OnSave; on any error the form
// stays as typed and the error is shown.
func (s *Screen) saveTapped() {
	v, err := s.Values()
	if err != nil {
		s.setStatus(wording.Sentence(err.Error()), widget.DangerImportance)
		var fe *fieldError
		if errors.As(err, &fe) {
			s.point(fe)
		}
		return
	}
	if s.OnSave == nil {
		return
	}
	if err := s.OnSave(v); err != nil {
		s.setStatus("Not saved: "+wording.Sentence(err.Error()), widget.DangerImportance)
		return
	}
	s.setStatus("Saved.", widget.SuccessImportance)
}

// point puts the cursor on the line the user must fix.
func (s *Screen) point(fe *fieldError) {
	if fe.line > 0 {
		fe.entry.CursorRow, fe.entry.CursorColumn = fe.line-1, 0
		fe.entry.Refresh()
	}
	if s.win != nil {
		s.win.Canvas().Focus(fe.entry)
	}
}

// restoreDefaults shows the built-in settings, for the user to Save.
func (s *Screen) restoreDefaults() {
	if s.OnDefaults == nil {
		return
	}
	s.Show(s.OnDefaults())
	s.setStatus("Built-in settings restored: Save to keep them.", widget.MediumImportance)
}

// chooseFolder asks for the download folder, starting from the one typed.
func (s *Screen) chooseFolder() {
	d := dialog.NewFolderOpen(s.folderChosen, s.win)
	if dir := strings.TrimSpace(s.dir.Text); dir != "" {
		if l, err := storage.ListerForURI(storage.NewFileURI(dir)); err == nil {
			d.SetLocation(l)
		}
	}
	d.Show()
}

// folderChosen puts the folder picked in the entry.
func (s *Screen) folderChosen(u fyne.ListableURI, err error) {
	if err != nil {
		s.setStatus("Could not open that folder: "+wording.Sentence(err.Error()), widget.DangerImportance)
		return
	}
	if u == nil {
		return // the user closed the dialog
	}
	s.dir.SetText(u.Path())
}

// edited follows any change: a "Saved." no longer describes the form, but
// an error stays until the next Save says whether it is fixed.
func (s *Screen) edited() {
	if s.status.Visible() && s.status.Importance != widget.DangerImportance {
		s.setStatus("", widget.MediumImportance)
	}
}

// setStatus shows msg above the buttons, or hides it when msg is empty.
func (s *Screen) setStatus(msg string, imp widget.Importance) {
	s.status.Importance = imp
	s.status.SetText(msg)
	if msg == "" {
		s.status.Hide()
	} else {
		s.status.Show()
	}
	s.root.Refresh() // shown or hidden changes the layout
}
