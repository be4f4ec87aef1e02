// Package ui is P2PD's desktop app, built with Fyne. It holds screens only:
// everything it shows comes from the engine through small function types,
// so screens are tested with Fyne's headless driver and fixed data.
package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"p2pd/assets"
	"p2pd/netcore/netif"
)

// AppID identifies the app to the desktop (preferences, notifications); it
// matches FyneApp.toml.
const AppID = "io.p2pd.app"

// Info describes the running build.
type Info struct {
	Version string
}

// NetSource lists this computer's network interfaces.
type NetSource func() ([]netif.Interface, error)

// Icon is the app icon as a Fyne resource.
var Icon = fyne.NewStaticResource("icon.png", assets.IconPNG)

// Run opens the main window and blocks until the user closes it.
func Run(info Info) {
	a := app.NewWithID(AppID)
	a.SetIcon(Icon)
	w := NewMainWindow(a, info, func() ([]netif.Interface, error) { return netif.List(netif.Options{}) })
	w.ShowAndRun()
}

// NewMainWindow builds the main window of app a and starts loading what it
// shows, off the UI goroutine.
func NewMainWindow(a fyne.App, info Info, nets NetSource) fyne.Window {
	w := a.NewWindow("P2PD")
	home := NewHome(info)
	w.SetContent(home)
	w.Resize(fyne.NewSize(720, 520))
	go func() {
		ifs, err := nets()
		fyne.Do(func() { home.ShowNetwork(ifs, err) })
	}()
	return w
}
