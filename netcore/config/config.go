// Package config holds P2PD's settings: the public servers it relies on
// (STUN, MQTT, TURN, NTP) and where it keeps its data.
//
// Defaults point at public infrastructure. A JSON file given with --config
// PATH or P2PD_CONFIG (else config.json in the data dir, where the app's
// Settings save) replaces any list it names and keeps the defaults for the
// rest:
//
//	{ "stun": ["udp://203.0.113.1:3478", "tcp://203.0.113.1:3478"],
//	  "mqtt": ["tcp://203.0.113.1:1883"],
//	  "turn": [{"url": "turn:203.0.113.1:3478", "user": "test", "pass": "test", "realm": "natlab"}],
//	  "ntp":  ["203.0.113.1"] }
//
// Unknown keys and malformed values are errors that name the key, so a typo
// never silently falls back to a default. P2PD_HOME chooses the data dir
// (identity, history); it defaults to the user's config dir.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Config is the set of servers P2PD uses.
type Config struct {
	// STUN servers as "udp://host:port" or "tcp://host:port"; the port
	// defaults to 3478.
	STUN []string `json:"stun"`
	// MQTT brokers for signaling, as "tcp://host:port" (port 1883 by default).
	MQTT []string `json:"mqtt"`
	// TURN relays with their long-term credentials.
	TURN []TURN `json:"turn"`
	// NTP servers, as "host" or "host:port" (port 123 by default).
	NTP []string `json:"ntp"`
}

// TURN is a TURN relay and its long-term credentials.
type TURN struct {
	URL   string `json:"url"` // "turn:host:port" (UDP) or "turn:host:port?transport=tcp"
	User  string `json:"user,omitempty"`
	Pass  string `json:"pass,omitempty"`
	Realm string `json:"realm,omitempty"`
}

// Default returns the built-in public servers.
func Default() Config {
	return Config{
		// Servers with a second IP and port answer RFC 5780 change requests,
		// which NAT filtering discovery needs; the others only report the
		// external address.
		STUN: []string{
			"udp://stun.hot-chilli.net:3478",
			"udp://stun.aaisp.co.uk:3478",
			"udp://stun.cloudflare.com:3478",
			"udp://stun.l.google.com:19302",
			"tcp://stun.hot-chilli.net:3478",
			"tcp://stun.nextcloud.com:443",
		},
		MQTT: []string{
			"tcp://test.mosquitto.org:1883",
			"tcp://broker.hivemq.com:1883",
			"tcp://broker.emqx.io:1883",
		},
		TURN: []TURN{
			{URL: "turn:158.69.27.176:4589", Realm: "p2pd.net"},
		},
		NTP: []string{"time.google.com", "time.cloudflare.com", "pool.ntp.org"},
	}
}

// Endpoint is a parsed server address.
type Endpoint struct {
	Proto string // "udp" or "tcp"
	Host  string // name or IP literal
	Port  uint16
}

// Addr returns "host:port".
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))) }

// String returns the endpoint in the config's URL form.
func (e Endpoint) String() string { return e.Proto + "://" + e.Addr() }

// STUNEndpoints returns the parsed STUN servers.
func (c Config) STUNEndpoints() ([]Endpoint, error) {
	return endpoints("stun", c.STUN, map[string]uint16{"udp": 3478, "tcp": 3478})
}

// MQTTEndpoints returns the parsed MQTT brokers.
func (c Config) MQTTEndpoints() ([]Endpoint, error) {
	return endpoints("mqtt", c.MQTT, map[string]uint16{"tcp": 1883})
}

// NTPEndpoints returns the parsed NTP servers (always UDP).
func (c Config) NTPEndpoints() ([]Endpoint, error) {
	out := make([]Endpoint, 0, len(c.NTP))
	for i, s := range c.NTP {
		host, port, err := splitHostPort(s, 123)
		if err != nil {
			return nil, keyErr("ntp", i, s, err)
		}
		out = append(out, Endpoint{Proto: "udp", Host: host, Port: port})
	}
	return out, nil
}

// Endpoint parses the TURN server's URL.
func (t TURN) Endpoint() (Endpoint, error) {
	rest, ok := strings.CutPrefix(t.URL, "turn:")
	if !ok {
		return Endpoint{}, errors.New(`want "turn:host:port"`)
	}
	addr, query, _ := strings.Cut(rest, "?")
	host, port, err := splitHostPort(addr, 3478)
	if err != nil {
		return Endpoint{}, err
	}
	proto := "udp"
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil || (q.Get("transport") != "udp" && q.Get("transport") != "tcp") {
			return Endpoint{}, fmt.Errorf("query %q: want transport=udp or transport=tcp", query)
		}
		proto = q.Get("transport")
	}
	return Endpoint{Proto: proto, Host: host, Port: port}, nil
}

func endpoints(key string, list []string, defaultPorts map[string]uint16) ([]Endpoint, error) {
	out := make([]Endpoint, 0, len(list))
	for i, s := range list {
		scheme, addr, ok := strings.Cut(s, "://")
		port, known := defaultPorts[scheme]
		if !ok || !known {
			schemes := make([]string, 0, len(defaultPorts))
			for k := range defaultPorts {
				schemes = append(schemes, k+"://host:port")
			}
			return nil, keyErr(key, i, s, fmt.Errorf("want %s", strings.Join(schemes, " or ")))
		}
		host, p, err := splitHostPort(addr, port)
		if err != nil {
			return nil, keyErr(key, i, s, err)
		}
		out = append(out, Endpoint{Proto: scheme, Host: host, Port: p})
	}
	return out, nil
}

// splitHostPort accepts "host", "host:port", "[v6]:port" and a bare IPv6.
func splitHostPort(s string, defaultPort uint16) (string, uint16, error) {
	if s == "" {
		return "", 0, errors.New("empty address")
	}
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		return ip.String(), defaultPort, nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if !strings.Contains(err.Error(), "missing port") {
			return "", 0, err
		}
		host, portStr = s, ""
	}
	if host == "" {
		return "", 0, errors.New("missing host")
	}
	if strings.ContainsAny(host, "/?#@ \t") {
		return "", 0, fmt.Errorf("%q is not a host name", host)
	}
	if portStr == "" {
		return host, defaultPort, nil
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", portStr)
	}
	return host, uint16(port), nil
}

func keyErr(key string, i int, val string, err error) error {
	return fmt.Errorf("%q[%d] = %q: %w", key, i, val, err)
}

// Validate checks every entry.
func (c Config) Validate() error {
	if _, err := c.STUNEndpoints(); err != nil {
		return err
	}
	if _, err := c.MQTTEndpoints(); err != nil {
		return err
	}
	if _, err := c.NTPEndpoints(); err != nil {
		return err
	}
	for i, t := range c.TURN {
		if _, err := t.Endpoint(); err != nil {
			return fmt.Errorf("%q[%d].url = %q: %w", "turn", i, t.URL, err)
		}
	}
	return nil
}

// Parse reads a config file's JSON over the defaults.
func Parse(r io.Reader) (Config, error) {
	var file map[string]json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&file); err != nil {
		return Config{}, fmt.Errorf("not valid JSON: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("not valid JSON: more than one value")
	}
	c := Default()
	lists := map[string]any{"stun": &c.STUN, "mqtt": &c.MQTT, "turn": &c.TURN, "ntp": &c.NTP}
	for key, raw := range file {
		dst, ok := lists[key]
		if !ok {
			return Config{}, fmt.Errorf("unknown key %q (known keys: stun, mqtt, turn, ntp)", key)
		}
		// A key that is present replaces the default list, even when empty;
		// null is a mistake, not "keep the defaults".
		if string(bytes.TrimSpace(raw)) == "null" {
			return Config{}, fmt.Errorf("key %q: want a list, found null", key)
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(dst); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return Config{}, fmt.Errorf("key %q: want %s, found JSON %s", key, ute.Type, ute.Value)
			}
			if after, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				return Config{}, fmt.Errorf("key %q: unknown key %s (a TURN server has url, user, pass, realm)", key, after)
			}
			return Config{}, fmt.Errorf("key %q: %w", key, err)
		}
	}
	return c, c.Validate()
}

// Load reads the config file at path.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// EnvConfig names the environment variable with the config file's path.
const EnvConfig = "P2PD_CONFIG"

// EnvHome names the environment variable with the data dir.
const EnvHome = "P2PD_HOME"

// FileName is the config file's name in the data dir, used when neither
// --config nor P2PD_CONFIG names one.
const FileName = "config.json"

// Locate returns the path of the config file in use: flagPath, else
// P2PD_CONFIG, else FileName in the data dir (which may not exist yet:
// then the defaults apply, and that is where saved settings go).
func Locate(flagPath string) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	if p := os.Getenv(EnvConfig); p != "" {
		return p, nil
	}
	home, err := Home()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, FileName), nil
}

// Resolve loads the config file Locate finds; with no file named and none
// in the data dir it returns the defaults.
func Resolve(flagPath string) (Config, error) {
	path, err := Locate(flagPath)
	if err != nil {
		return Config{}, err
	}
	if flagPath == "" && os.Getenv(EnvConfig) == "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
	}
	return Load(path)
}

// Save writes c to path as the config file, whole: beside it first, then
// renamed over it, so a crash leaves the old file or the new one. c must
// be valid.
func Save(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	// Every list is written, an empty one as [] (Parse refuses null): a
	// list left out would mean the defaults.
	for _, l := range []*[]string{&c.STUN, &c.MQTT, &c.NTP} {
		if *l == nil {
			*l = []string{}
		}
	}
	if c.TURN == nil {
		c.TURN = []TURN{}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving the config: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving the config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving the config: %w", err)
	}
	return nil
}

// Home returns the data dir: P2PD_HOME, or "p2pd" in the user's config dir.
func Home() (string, error) {
	if h := os.Getenv(EnvHome); h != "" {
		return h, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding a data dir (set %s): %w", EnvHome, err)
	}
	return filepath.Join(dir, "p2pd"), nil
}
