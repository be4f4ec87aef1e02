// Package uitest helps the screens' tests: a headless Fyne app and window.
package uitest

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

// Window starts Fyne's test app and opens a headless window in it; both
// end with the test.
func Window(t testing.TB) fyne.Window {
	t.Helper()
	a := test.NewApp()
	t.Cleanup(a.Quit)
	w := test.NewWindow(nil)
	t.Cleanup(w.Close)
	return w
}
