//go:build !nogui

package main

import "p2pd/ui"

// runGUI opens the desktop app and returns when its window closes.
func runGUI() error {
	ui.Run(ui.Info{Version: version})
	return nil
}
