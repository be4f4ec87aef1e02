package main

import (
	"bufio"
	"encoding/xml"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// fyneApp is what FyneApp.toml says about the app.
type fyneApp struct {
	Website string
	Details struct {
		Icon, Name, ID, Version string
		Build                   int
	}
	LinuxAndBSD struct {
		GenericName, Comment string
		Categories, Keywords []string
	}
	// Migrations: fyneDo builds packages with migrated_fynedo, which
	// TestGUITwoApps (checks on, no thread errors) vouches for.
	Migrations map[string]bool
}

func readFyneApp(t *testing.T) fyneApp {
	t.Helper()
	var app fyneApp
	md, err := toml.DecodeFile("FyneApp.toml", &app)
	if err != nil {
		t.Fatal(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Errorf("FyneApp.toml: keys Fyne does not read: %v", und)
	}
	return app
}

func TestFyneApp(t *testing.T) {
	app := readFyneApp(t)
	d := app.Details
	if d.ID != "io.p2pd.app" || d.Name != "P2PD" || d.Build < 1 || !strings.HasPrefix(app.Website, "https://") {
		t.Errorf("FyneApp.toml: %+v", app)
	}
	// Fyne's packager takes x, x.y or x.y.z.
	parts := strings.Split(d.Version, ".")
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			parts = nil
		}
	}
	if len(parts) == 0 || len(parts) > 3 {
		t.Errorf("FyneApp.toml: Version %q is not x.y.z", d.Version)
	}
	if _, err := os.Stat(d.Icon); err != nil {
		t.Errorf("FyneApp.toml: Icon: %v", err)
	}
}

// requireTool finds a program a test needs: missing, the test is skipped,
// or fails under CI (packaging/deps.sh test installs it).
func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (packaging/deps.sh test installs it)", name)
			}
			t.Skipf("%s is missing", name)
		}
	}
}

// desktopEntry reads the [Desktop Entry] group of a .desktop file.
func desktopEntry(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	group := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			group = line
		case group == "[Desktop Entry]":
			k, v, _ := strings.Cut(line, "=")
			keys[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// validDesktopEntry checks a .desktop file with desktop-file-validate,
// which prints nothing for a clean file.
func validDesktopEntry(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("desktop-file-validate", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("desktop-file-validate %s: %v\n%s", path, err, out)
	}
}

// validMetainfo checks AppStream metadata with appstreamcli, offline,
// strictly: errors, warnings and infos fail (pedantic hints do not).
func validMetainfo(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("appstreamcli", "validate", "--no-net", "--strict", "--explain", path).CombinedOutput()
	if err != nil {
		t.Errorf("appstreamcli validate %s: %v\n%s", path, err, out)
	}
}

func TestDesktopEntry(t *testing.T) {
	requireTool(t, "desktop-file-validate")
	app := readFyneApp(t)
	path := "packaging/" + app.Details.ID + ".desktop"
	validDesktopEntry(t, path)
	e := desktopEntry(t, path)
	lb := app.LinuxAndBSD
	for k, want := range map[string]string{
		"Type": "Application",
		"Name": app.Details.Name,
		// The GUI is p2pd with no arguments.
		"Exec": "p2pd",
		"Icon": app.Details.ID,
		// GLFW names the window's X11 class after its first title, the
		// app's name (install_test.go checks the running app).
		"StartupWMClass": app.Details.Name,
		"Terminal":       "false",
		"Categories":     "Network;FileTransfer;Chat;",
		// Fyne's packager writes these from FyneApp.toml; the same
		// values keep a plain `fyne package` in step.
		"GenericName": lb.GenericName,
		"Comment":     lb.Comment,
		"Keywords":    strings.Join(lb.Keywords, ";") + ";",
	} {
		if e[k] != want {
			t.Errorf("%s: %s=%q, want %q", path, k, e[k], want)
		}
	}
	if strings.Join(lb.Categories, ";")+";" != e["Categories"] {
		t.Errorf("FyneApp.toml's categories %v differ from %s's %q", lb.Categories, path, e["Categories"])
	}
}

// metainfo is the part of an AppStream file the tests compare.
type metainfo struct {
	Type       string `xml:"type,attr"`
	ID         string `xml:"id"`
	Name       string `xml:"name"`
	Launchable struct {
		Type string `xml:"type,attr"`
		ID   string `xml:",chardata"`
	} `xml:"launchable"`
	URLs []struct {
		Type string `xml:"type,attr"`
		URL  string `xml:",chardata"`
	} `xml:"url"`
	Binaries    []string `xml:"provides>binary"`
	Screenshots []string `xml:"screenshots>screenshot>image"`
	Releases    []struct {
		Version string `xml:"version,attr"`
	} `xml:"releases>release"`
}

func TestMetainfo(t *testing.T) {
	requireTool(t, "appstreamcli")
	app := readFyneApp(t)
	path := "packaging/" + app.Details.ID + ".metainfo.xml"
	validMetainfo(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m metainfo
	if err := xml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "desktop-application" || m.ID != app.Details.ID || m.Name != app.Details.Name ||
		m.Launchable.Type != "desktop-id" || m.Launchable.ID != app.Details.ID+".desktop" {
		t.Errorf("%s names another app: %+v", path, m)
	}
	if len(m.URLs) == 0 || m.URLs[0].Type != "homepage" || m.URLs[0].URL != app.Website {
		t.Errorf("%s: homepage %+v, want FyneApp.toml's Website %s", path, m.URLs, app.Website)
	}
	if len(m.Binaries) != 1 || m.Binaries[0] != "p2pd" {
		t.Errorf("%s provides %v, want the binary p2pd", path, m.Binaries)
	}
	// Releases are listed newest first; the newest is the version built.
	if len(m.Releases) == 0 || m.Releases[0].Version != app.Details.Version {
		t.Errorf("%s: newest release %+v, want FyneApp.toml's Version %s", path, m.Releases, app.Details.Version)
	}
	if len(m.Screenshots) == 0 || !strings.HasSuffix(m.Screenshots[0], "/docs/screens/home.png") {
		t.Errorf("%s: screenshots %v, want the README's docs/screens/home.png first", path, m.Screenshots)
	}
	for _, u := range m.Screenshots {
		if _, err := os.Stat(u[strings.Index(u, "/docs/")+1:]); err != nil {
			t.Errorf("%s: screenshot %s is not in the repository: %v", path, u, err)
		}
	}
}
