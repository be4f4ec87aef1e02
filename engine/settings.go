package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"p2pd/netcore/config"
)

// settingsFile keeps the app's own settings in the data dir; the servers
// live in the config file, which the command line reads too.
const settingsFile = "app-settings.json"

// Themes the app offers.
const (
	ThemeSystem = "system"
	ThemeLight  = "light"
	ThemeDark   = "dark"
)

// Settings are what the user can change in the app.
type Settings struct {
	// Config lists the servers (saved in the config file).
	Config config.Config `json:"-"`
	// DownloadDir is where accepted files go unless another folder is
	// chosen for an offer.
	DownloadDir string `json:"download_dir"`
	// UPnP asks the router to forward a port (UPnP IGD, NAT-PMP, PCP).
	UPnP bool `json:"upnp"`
	// Relay allows relaying through TURN when nothing direct works.
	Relay bool `json:"relay"`
	// Notifications shows system notifications for messages and offers
	// while the window is in the background.
	Notifications bool `json:"notifications"`
	// Theme is ThemeSystem, ThemeLight or ThemeDark.
	Theme string `json:"theme"`
}

// DefaultSettings are the settings before the user changes any, with the
// servers of cfg.
func DefaultSettings(cfg config.Config) Settings {
	return Settings{Config: cfg, DownloadDir: defaultDownloads(), UPnP: true, Relay: true, Notifications: true, Theme: ThemeSystem}
}

// defaultDownloads is the user's Downloads folder.
func defaultDownloads() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "Downloads")
	}
	return "Downloads"
}

// check says what is wrong with s, for a person.
func (s Settings) check() error {
	switch {
	case s.DownloadDir == "":
		return errors.New("choose a download folder")
	case !filepath.IsAbs(s.DownloadDir):
		return fmt.Errorf("the download folder %q must be a full path", s.DownloadDir)
	case s.Theme != ThemeSystem && s.Theme != ThemeLight && s.Theme != ThemeDark:
		return fmt.Errorf("unknown theme %q (system, light or dark)", s.Theme)
	}
	return s.Config.Validate()
}

// loadSettings reads the app's settings from home; the servers are cfg's.
// A missing file means the defaults; a damaged one is an error, never
// silently replaced.
func loadSettings(home string, cfg config.Config) (Settings, error) {
	s := DefaultSettings(cfg)
	b, err := os.ReadFile(filepath.Join(home, settingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading the app's settings: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("the app's settings in %s are damaged (fix or remove the file): %w", filepath.Join(home, settingsFile), err)
	}
	s.Config = cfg
	return s, nil
}

// Settings returns the settings in use.
func (e *Engine) Settings() Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.settings
}

// SaveSettings checks s, saves it (the servers in the config file, the
// rest in the data dir) and puts it to use: new servers, UPnP or relay
// settings start the node again in the background (the friends' sessions
// end and the Keeper connects again where work waits; the Network hook
// tells when it is up). A setting that is wrong is an error that says
// which, and nothing is saved.
func (e *Engine) SaveSettings(s Settings) error {
	if err := s.check(); err != nil {
		return err
	}
	old := e.Settings()
	if !sameServers(old.Config, s.Config) {
		if err := config.Save(e.opt.ConfigPath, s.Config); err != nil {
			return err
		}
	}
	if err := saveJSON(filepath.Join(e.home, settingsFile), s); err != nil {
		return fmt.Errorf("saving the app's settings: %w", err)
	}
	e.mu.Lock()
	e.settings = s
	e.mu.Unlock()
	e.recv.SetDir(s.DownloadDir)
	restart := !sameServers(old.Config, s.Config) || old.UPnP != s.UPnP || old.Relay != s.Relay
	life := e.life()
	if restart && life != nil && life.Err() == nil {
		// Starting again takes seconds (the servers): not on the
		// caller's time. The Network hook says how it went.
		e.watch.Go(func() {
			snap, err := e.Restart(life)
			if h := e.hook().Network; h != nil && life.Err() == nil {
				h(snap, "the settings changed: P2PD started again with them", err)
			}
		})
	}
	return nil
}

// sameServers reports whether a and b list the same servers (an empty
// list and none are the same).
func sameServers(a, b config.Config) bool {
	return slices.Equal(a.STUN, b.STUN) && slices.Equal(a.MQTT, b.MQTT) && slices.Equal(a.NTP, b.NTP) && slices.Equal(a.TURN, b.TURN)
}

// saveJSON writes v to path as JSON, whole: beside it first, then renamed
// over it, so a crash leaves the old file or the new one.
func saveJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
