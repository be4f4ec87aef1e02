package settings

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"p2pd/netcore/config"
	"p2pd/ui/uitest"
)

// newScreen puts a Settings screen in a headless window.
func newScreen(t *testing.T) (*Screen, fyne.Window) {
	t.Helper()
	w := uitest.Window(t)
	s := New(w)
	w.SetContent(s.Content())
	w.Resize(fyne.NewSize(700, 600))
	return s, w
}

// full is a Values with every field set, TURN credentials and realms
// included.
func full() Values {
	return Values{
		Config: config.Config{
			STUN: []string{"udp://203.0.113.1:3478", "tcp://203.0.113.1:3478", "udp://[2001:db8::1]:3478"},
			MQTT: []string{"tcp://203.0.113.1:1883", "tcp://broker.example.net"},
			TURN: []config.TURN{
				{URL: "turn:203.0.113.1:3478", User: "test", Pass: "secret", Realm: "natlab"},
				{URL: "turn:203.0.113.2:3478?transport=tcp", User: "me", Pass: `two words "quoted"`},
				{URL: "turn:158.69.27.176:4589", Realm: "p2pd.net"},
				{URL: "turn:203.0.113.3"},
			},
			NTP: []string{"203.0.113.1", "time.example.net:1123"},
		},
		DownloadDir:   "/home/me/Downloads/P2PD",
		UPnP:          true,
		Relay:         false,
		Notifications: true,
		Theme:         "dark",
	}
}

func mustValues(t *testing.T, s *Screen) Values {
	t.Helper()
	v, err := s.Values()
	if err != nil {
		t.Fatalf("Values: %v", err)
	}
	return v
}

// TestShowValuesRoundTrip: what Show puts on screen, Values reads back.
func TestShowValuesRoundTrip(t *testing.T) {
	s, _ := newScreen(t)
	defaults := Values{Config: config.Default(), DownloadDir: "D", Relay: true, Theme: "system"}
	for _, want := range []Values{full(), defaults} {
		s.Show(want)
		if got := mustValues(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("read back\n%+v\nwant\n%+v", got, want)
		}
	}
	s.Show(full())
	if first := strings.Split(s.turn.Text, "\n")[0]; first != "turn:203.0.113.1:3478 test •••••• natlab" {
		t.Errorf("TURN line 1 shows %q", first)
	}
	if s.turn.MinSize().Height <= s.ntp.MinSize().Height {
		t.Error("the TURN box did not grow to show its 4 lines")
	}
	s.Show(defaults)
	if s.turn.Text != `turn:158.69.27.176:4589 "" "" p2pd.net` {
		t.Errorf("the built-in relay shows as %q", s.turn.Text)
	}
}

// TestHiddenPasswords: saved TURN passwords show hidden and are kept
// when left so; a new one typed over replaces it; a hidden one moved to
// another server or user is refused, naming the line, and not saved.
func TestHiddenPasswords(t *testing.T) {
	s, _ := newScreen(t)
	s.Show(full())
	if strings.Contains(s.turn.Text, "secret") || strings.Contains(s.turn.Text, "quoted") {
		t.Fatalf("a password shows: %q", s.turn.Text)
	}
	lines := strings.Split(s.turn.Text, "\n")
	lines[0] = "turn:203.0.113.1:3478 test newpass natlab"
	s.turn.SetText(strings.Join(lines, "\n"))
	got := mustValues(t, s).Config.TURN
	if got[0].Pass != "newpass" || got[1].Pass != `two words "quoted"` {
		t.Errorf("passwords read back: %q, %q", got[0].Pass, got[1].Pass)
	}
	lines[1] = strings.Replace(lines[1], " me ", " someone ", 1)
	s.turn.SetText(strings.Join(lines, "\n"))
	_, err := s.Values()
	var fe *fieldError
	if err == nil || !errors.As(err, &fe) || fe.line != 2 || !strings.Contains(err.Error(), "type the password for someone") {
		t.Errorf("a hidden password under another user: %v", err)
	}
}

// TestBlankLinesAndSpaces: blank lines and the spaces around a line are
// not part of a server.
func TestBlankLinesAndSpaces(t *testing.T) {
	s, _ := newScreen(t)
	s.Show(full())
	s.stun.SetText("\n  udp://203.0.113.1:3478  \n\n\t\ntcp://203.0.113.1 \r\n\n")
	s.mqtt.SetText("   ")
	s.turn.SetText("\n  turn:203.0.113.1:3478   test\tsecret   natlab \n  \n turn:203.0.113.9  ")
	s.ntp.SetText(" pool.ntp.org\n\n")
	s.dir.SetText("  /tmp/in  ")
	v := mustValues(t, s)
	want := full()
	want.Config = config.Config{
		STUN: []string{"udp://203.0.113.1:3478", "tcp://203.0.113.1"},
		TURN: []config.TURN{
			{URL: "turn:203.0.113.1:3478", User: "test", Pass: "secret", Realm: "natlab"},
			{URL: "turn:203.0.113.9"},
		},
		NTP: []string{"pool.ntp.org"},
	}
	want.DownloadDir = "/tmp/in"
	if !reflect.DeepEqual(v, want) {
		t.Errorf("read\n%+v\nwant\n%+v", v, want)
	}
}

// TestBadLineNamed: a wrong line is reported by field and line number as
// the user sees them (blank lines counted).
func TestBadLineNamed(t *testing.T) {
	s, _ := newScreen(t)
	for _, c := range []struct {
		entry      *widget.Entry
		text, want string
	}{
		{s.stun, "udp://203.0.113.1\nudp//x", `STUN line 2 "udp//x": want `},
		{s.stun, "\n\nudp://x:0", `STUN line 3 "udp://x:0": port "0" is not a number from 1 to 65535`},
		{s.mqtt, "udp://203.0.113.1:1883", `MQTT line 1 "udp://203.0.113.1:1883": want tcp://host:port`},
		{s.ntp, "pool.ntp.org\n udp://pool.ntp.org ", `NTP line 2 "udp://pool.ntp.org": `},
		{s.turn, "turn:x\n\nturn:x:99999 u p", `TURN line 3 "turn:x:99999": port "99999" is not`},
		{s.turn, "stun:x", `TURN line 1 "stun:x": want "turn:host:port"`},
		{s.turn, "turn:x?transport=sctp", `TURN line 1 "turn:x?transport=sctp": query`},
		{s.turn, "turn:x user", `TURN line 1: a user name needs a password`},
		{s.turn, "turn:x a b c d", `TURN line 1: 5 words, want at most 4`},
		{s.turn, `turn:x "user pass`, `TURN line 1: a quoted word is not closed`},
		{s.turn, `turn:x "u"p pass`, `TURN line 1: put a space after a closing quote`},
	} {
		s.Show(full())
		c.entry.SetText(c.text)
		_, err := s.Values()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to start %q", c.text, err, c.want)
		}
	}
}

// TestBadLineNotSaved: Save with a wrong line says which, in the error
// colour, keeps what was typed and does not call OnSave.
func TestBadLineNotSaved(t *testing.T) {
	s, w := newScreen(t)
	saves := 0
	s.OnSave = func(Values) error { saves++; return nil }
	s.Show(full())
	typed := "udp://203.0.113.1:3478\n\nudp//x\ntcp://203.0.113.1"
	s.stun.SetText(typed)
	tap(t, w, "Save")
	if saves != 0 {
		t.Errorf("OnSave called %d times", saves)
	}
	if !s.status.Visible() || s.status.Importance != widget.DangerImportance ||
		!strings.HasPrefix(s.status.Text, `STUN line 3 "udp//x": want `) {
		t.Errorf("status %q (visible %v, importance %v)", s.status.Text, s.status.Visible(), s.status.Importance)
	}
	if s.stun.Text != typed {
		t.Errorf("STUN now %q, was typed %q", s.stun.Text, typed)
	}
	if w.Canvas().Focused() != s.stun || s.stun.CursorRow != 2 {
		t.Errorf("focus %v on row %d, want the STUN entry's row 2", w.Canvas().Focused(), s.stun.CursorRow)
	}
	// The error stays while the user fixes it, until Save says it is.
	s.stun.SetText("udp://203.0.113.1:3478")
	if !s.status.Visible() {
		t.Error("the error went away on the first keystroke")
	}
	tap(t, w, "Save")
	if saves != 1 || s.status.Text != "Saved." {
		t.Errorf("after the fix: %d saves, status %q", saves, s.status.Text)
	}
}

// TestSave: Save hands the form to OnSave once and says so; an edit then
// takes the "Saved." away.
func TestSave(t *testing.T) {
	s, w := newScreen(t)
	var got []Values
	s.OnSave = func(v Values) error { got = append(got, v); return nil }
	s.Show(full())
	s.relay.SetChecked(true)
	tap(t, w, "Save")
	want := full()
	want.Relay = true
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("OnSave heard %+v, want once %+v", got, want)
	}
	if !s.status.Visible() || s.status.Text != "Saved." || s.status.Importance != widget.SuccessImportance {
		t.Errorf("status %q (visible %v, importance %v)", s.status.Text, s.status.Visible(), s.status.Importance)
	}
	s.dir.SetText("/elsewhere")
	if s.status.Visible() {
		t.Errorf("status %q still shown after an edit", s.status.Text)
	}
}

// TestSaveError: OnSave's error is shown and the form is kept.
func TestSaveError(t *testing.T) {
	s, w := newScreen(t)
	s.OnSave = func(Values) error { return errors.New("saving the config: disk full") }
	s.Show(full())
	s.ntp.SetText("ntp.example.org")
	tap(t, w, "Save")
	if !s.status.Visible() || s.status.Importance != widget.DangerImportance ||
		s.status.Text != "Not saved: Saving the config: disk full." {
		t.Errorf("status %q (visible %v, importance %v)", s.status.Text, s.status.Visible(), s.status.Importance)
	}
	if v := mustValues(t, s); len(v.Config.NTP) != 1 || v.Config.NTP[0] != "ntp.example.org" || v.Config.STUN[0] != full().Config.STUN[0] {
		t.Errorf("form now %+v", v)
	}
}

// TestRestoreDefaults: the button shows OnDefaults' settings, unsaved.
func TestRestoreDefaults(t *testing.T) {
	s, w := newScreen(t)
	s.OnSave = func(Values) error { t.Error("OnSave called"); return nil }
	defaults := Values{Config: config.Default(), DownloadDir: "/home/me/Downloads", UPnP: true, Relay: true, Notifications: true, Theme: "system"}
	s.OnDefaults = func() Values { return defaults }
	s.Show(full())
	s.stun.SetText("udp//broken") // what is typed goes too
	tap(t, w, "Restore defaults")
	if got := mustValues(t, s); !reflect.DeepEqual(got, defaults) {
		t.Errorf("form\n%+v\nwant\n%+v", got, defaults)
	}
	if !strings.Contains(s.status.Text, "Save to keep them") {
		t.Errorf("status %q", s.status.Text)
	}
}

// TestTheme: each choice reads back as its value; an empty theme shows as
// System, an unknown one is not quietly changed.
func TestTheme(t *testing.T) {
	s, _ := newScreen(t)
	for _, c := range []struct{ label, value string }{{"System", "system"}, {"Light", "light"}, {"Dark", "dark"}} {
		v := full()
		v.Theme = c.value
		s.Show(v)
		if s.theme.Selected != c.label {
			t.Errorf("theme %q shows %q", c.value, s.theme.Selected)
		}
		s.Show(full())
		s.theme.SetSelected(c.label) // the user's choice
		if got := mustValues(t, s).Theme; got != c.value {
			t.Errorf("%s reads as %q", c.label, got)
		}
	}
	v := full()
	v.Theme = ""
	s.Show(v)
	if got := mustValues(t, s).Theme; got != "system" {
		t.Errorf("an empty theme reads back as %q", got)
	}
	v.Theme = "purple"
	s.Show(v)
	if _, err := s.Values(); err == nil || !strings.Contains(err.Error(), "System, Light or Dark") {
		t.Errorf("theme %q: error %v", v.Theme, err)
	}
}

// TestDownloadFolder: it must not be empty, and Choose… fills it in.
func TestDownloadFolder(t *testing.T) {
	s, w := newScreen(t)
	s.OnSave = func(Values) error { t.Error("OnSave called"); return nil }
	s.Show(full())
	s.dir.SetText("   ")
	tap(t, w, "Save")
	if !strings.Contains(s.status.Text, "download folder") || w.Canvas().Focused() != s.dir {
		t.Errorf("status %q, focus %v", s.status.Text, w.Canvas().Focused())
	}

	dir := t.TempDir()
	l, err := storage.ListerForURI(storage.NewFileURI(dir))
	if err != nil {
		t.Fatal(err)
	}
	s.folderChosen(l, nil)
	if s.dir.Text != dir {
		t.Errorf("folder %q, chose %q", s.dir.Text, dir)
	}
	s.folderChosen(nil, nil) // cancelled
	if s.dir.Text != dir {
		t.Errorf("cancelling changed the folder to %q", s.dir.Text)
	}
	tap(t, w, "Choose…")
	if w.Canvas().Overlays().Top() == nil {
		t.Error("Choose… opened no dialog")
	}
}

// TestWords: quoting writes any TURN word so that it reads back.
func TestWords(t *testing.T) {
	for _, w := range [][]string{
		{"turn:x", "", "", "realm"},
		{"turn:x", "user name", `pa"ss`, `"quoted"`},
		{"turn:x", `back\slash`, "tab\there", "ünï"},
	} {
		line := strings.Join([]string{word(w[0]), word(w[1]), word(w[2]), word(w[3])}, " ")
		got, err := words(line)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("%q: %q, %v; want %q", line, got, err, w)
		}
	}
}

// tap taps the button labelled text, found on w's canvas as a user would.
func tap(t *testing.T, w fyne.Window, text string) {
	t.Helper()
	var found *widget.Button
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == text && b.Visible() {
			found = b
		}
		switch x := o.(type) {
		case *fyne.Container:
			for _, c := range x.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(x).Objects() {
				walk(c)
			}
		}
	}
	walk(w.Content())
	if found == nil {
		t.Fatalf("no %q button on screen", text)
	}
	test.Tap(found)
}
