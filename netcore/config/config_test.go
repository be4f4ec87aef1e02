package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.STUN) == 0 || len(c.MQTT) == 0 || len(c.TURN) == 0 || len(c.NTP) == 0 {
		t.Errorf("a default server list is empty: %+v", c)
	}
}

func TestParse(t *testing.T) {
	c, err := Parse(strings.NewReader(`{
		"stun": ["udp://203.0.113.1:3478", "tcp://203.0.113.1", "udp://[fd00:64::1]:3479"],
		"turn": [{"url": "turn:203.0.113.1:3478", "user": "test", "pass": "test", "realm": "natlab"}],
		"ntp": ["203.0.113.1", "fd00:64::1", "time.example:1123"]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	stun, _ := c.STUNEndpoints()
	want := []Endpoint{{"udp", "203.0.113.1", 3478}, {"tcp", "203.0.113.1", 3478}, {"udp", "fd00:64::1", 3479}}
	if !reflect.DeepEqual(stun, want) {
		t.Errorf("stun = %v, want %v", stun, want)
	}
	if stun[2].Addr() != "[fd00:64::1]:3479" || stun[0].String() != "udp://203.0.113.1:3478" {
		t.Errorf("formatting: %s %s", stun[2].Addr(), stun[0])
	}
	ntp, _ := c.NTPEndpoints()
	if ntp[0].Addr() != "203.0.113.1:123" || ntp[1].Addr() != "[fd00:64::1]:123" || ntp[2].Port != 1123 {
		t.Errorf("ntp = %v", ntp)
	}
	if !reflect.DeepEqual(c.MQTT, Default().MQTT) {
		t.Errorf("absent key mqtt did not keep the defaults: %v", c.MQTT)
	}
	turn, err := c.TURN[0].Endpoint()
	if err != nil || turn != (Endpoint{"udp", "203.0.113.1", 3478}) || c.TURN[0].Realm != "natlab" {
		t.Errorf("turn = %v, %v", turn, err)
	}

	empty, err := Parse(strings.NewReader(`{"mqtt": []}`))
	if err != nil || len(empty.MQTT) != 0 {
		t.Errorf("an empty list must mean no brokers: %v, %v", empty.MQTT, err)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"stun": ["203.0.113.1:3478"]}`, `"stun"[0] = "203.0.113.1:3478": want`},
		{`{"stun": ["ftp://x"]}`, `"stun"[0] = "ftp://x"`},
		{`{"stun": ["udp://x:0"]}`, `port "0" is not a number from 1 to 65535`},
		{`{"mqtt": ["tcp://:1883"]}`, `"mqtt"[0]`},
		{`{"ntp": [""]}`, `"ntp"[0] = "": empty address`},
		{`{"turn": [{"url": "stun:x"}]}`, `"turn"[0].url = "stun:x"`},
		{`{"turn": [{"url": "turn:x?transport=sctp"}]}`, `transport=udp or transport=tcp`},
		{`{"turn": [{"url": "turn:x", "password": "p"}]}`, `unknown key "password"`},
		{`{"turn": [{"url": "turn://x"}]}`, `"//x" is not a host name`},
		{`{"stuns": []}`, `unknown key "stuns"`},
		{`{"stun": null}`, `key "stun": want a list, found null`},
		{`{"stun": "udp://x"}`, `key "stun": want []string, found JSON string`},
		{`[]`, `not valid JSON`},
		{`{"stun": [`, `not valid JSON`},
		{`{} {}`, `more than one value`},
	} {
		_, err := Parse(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestResolveAndHome(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.json")
	os.WriteFile(path, []byte(`{"ntp": ["203.0.113.1"]}`), 0o644)

	t.Setenv(EnvConfig, "")
	t.Setenv(EnvHome, t.TempDir())
	if c, err := Resolve(""); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("no file: %v, %v", c, err)
	}
	t.Setenv(EnvConfig, path)
	if c, err := Resolve(""); err != nil || c.NTP[0] != "203.0.113.1" {
		t.Errorf("P2PD_CONFIG: %v, %v", c.NTP, err)
	}
	if _, err := Resolve(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("--config of a missing file: %v", err)
	}
	os.WriteFile(path, []byte(`{"ntp": 5}`), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a bad file's error must name it: %v", err)
	}

	t.Setenv(EnvHome, dir)
	if h, err := Home(); err != nil || h != dir {
		t.Errorf("Home = %q, %v", h, err)
	}
}

// TestSaveInDataDir: settings saved to the data dir's config file are
// what Resolve finds there next time (with no file named), a named file
// still wins, and an invalid config is refused without touching the file.
func TestSaveInDataDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvHome, home)
	t.Setenv(EnvConfig, "")
	path, err := Locate("")
	if err != nil || path != filepath.Join(home, FileName) {
		t.Fatalf("Locate = %q, %v", path, err)
	}
	c := Default()
	c.NTP = []string{"ntp.example.org"}
	c.TURN = []TURN{{URL: "turn:203.0.113.1:3478", User: "u", Pass: "p", Realm: "r"}}
	if err := Save(path, c); err != nil {
		t.Fatal(err)
	}
	if got, err := Resolve(""); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("after Save: %+v, %v", got, err)
	}
	bad := c
	bad.STUN = []string{"udp//nowhere"}
	if err := Save(path, bad); err == nil {
		t.Error("an invalid config was saved")
	}
	if got, _ := Resolve(""); !reflect.DeepEqual(got, c) {
		t.Errorf("a refused save changed the file: %+v", got)
	}
	named := filepath.Join(t.TempDir(), "lab.json")
	os.WriteFile(named, []byte(`{"ntp": ["203.0.113.1"]}`), 0o644)
	t.Setenv(EnvConfig, named)
	if got, err := Resolve(""); err != nil || got.NTP[0] != "203.0.113.1" {
		t.Errorf("P2PD_CONFIG beside a saved file: %v, %v", got.NTP, err)
	}
}
