//go:build !nogui

package main

import (
	"errors"
	"os"
	"runtime"

	"p2pd/engine"
	"p2pd/netcore/config"
	"p2pd/ui"
)

// runGUI opens the desktop app and returns when its window closes.
func runGUI() error {
	if err := displayMissing(runtime.GOOS, os.Getenv); err != nil {
		return err
	}
	home, err := config.Home()
	if err != nil {
		return err
	}
	cfg, err := config.Resolve("")
	if err != nil {
		return err
	}
	cfgPath, err := config.Locate("")
	if err != nil {
		return err
	}
	log := envLogger()
	eng, err := engine.New(home, cfg, engine.Options{Logger: log, ConfigPath: cfgPath})
	if err != nil {
		return err
	}
	defer eng.Close()
	var opt ui.Options
	if os.Getenv("P2PD_UI_DRIVE") == "1" {
		// The smoke test works the window through stdin (ui.Options.Drive).
		opt.Drive, opt.Report = os.Stdin, os.Stdout
	}
	ui.Run(eng, opt)
	return nil
}

// errNoDisplay says, in one line, why the app cannot open and what works
// instead.
var errNoDisplay = errors.New("no display to open the desktop app on (DISPLAY and WAYLAND_DISPLAY are unset); " +
	"to run without a window, use 'p2pd node' (or 'p2pd help' for every command)")

// displayMissing reports errNoDisplay where the windowing library needs a
// display server and the environment names none (a server, an SSH login
// without X forwarding): without the check, GLFW fails to start and Fyne
// panics with a stack trace.
func displayMissing(goos string, getenv func(string) string) error {
	switch goos {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return errNoDisplay
		}
	}
	return nil
}
