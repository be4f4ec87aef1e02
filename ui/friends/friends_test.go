package friends

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"p2pd/ui/uitest"
)

// TestSeenWords: presence in plain words, by how long ago.
func TestSeenWords(t *testing.T) {
	s := New(uitest.Window(t))
	now := time.Date(2026, 11, 21, 18, 0, 0, 0, time.Local)
	s.now = func() time.Time { return now }
	for _, c := range []struct {
		f    Friend
		want string
	}{
		{Friend{Online: true, LastSeen: now.Add(-time.Hour)}, "online"},
		{Friend{}, "not seen yet"},
		{Friend{LastSeen: now.Add(-20 * time.Second)}, "last seen just now"},
		{Friend{LastSeen: now.Add(-17 * time.Minute)}, "last seen 17 min ago"},
		{Friend{LastSeen: now.Add(-3 * time.Hour)}, "last seen at 15:00"},
		{Friend{LastSeen: time.Date(2026, 10, 2, 9, 0, 0, 0, time.Local)}, "last seen 2 Oct 2026"},
	} {
		if got := s.seen(c.f); got != c.want {
			t.Errorf("%+v: %q, want %q", c.f, got, c.want)
		}
	}
}

// TestConnectButtons: a friend's and a nearby node's Connect buttons hand
// their addresses to OnConnect.
func TestConnectButtons(t *testing.T) {
	s := New(uitest.Window(t))
	var got []string
	s.OnConnect = func(address string) { got = append(got, address) }
	s.ShowFriends([]Friend{{Name: "Bob", Address: "BOB"}})
	s.ShowNearby([]Nearby{{Address: "NEAR", From: "192.168.1.9"}})
	tapAll(s.friends)
	tapAll(s.nearby)
	if len(got) != 2 || got[0] != "BOB" || got[1] != "NEAR" {
		t.Errorf("OnConnect heard %v", got)
	}
}

// tapAll taps every "Connect" button in c's rows.
func tapAll(c *fyne.Container) {
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == "Connect" {
			test.Tap(b)
		}
		if ct, ok := o.(*fyne.Container); ok {
			for _, x := range ct.Objects {
				walk(x)
			}
		}
	}
	walk(c)
}
