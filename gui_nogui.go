//go:build nogui

package main

import "errors"

// runGUI reports that this headless build (-tags nogui, no cgo needed)
// has no desktop app.
func runGUI() error {
	return errors.New("this build has no desktop app (built with -tags nogui); run 'p2pd help' for the commands")
}
