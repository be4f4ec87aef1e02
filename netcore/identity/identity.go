// Package identity gives a node its long-term identity: an Ed25519 key pair
// created on first start and kept in the data dir (mode 0600), the node id
// derived from the public key, and TLS 1.3 configurations that authenticate
// peers by pinning their public keys (taken from their addresses) instead
// of trusting certificate authorities.
//
// A key file that exists but cannot be read or parsed is an error, never
// silently replaced: a new key is a new identity, and friends would no
// longer recognise this node.
package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the identity's file name in the data dir.
const KeyFile = "identity.pem"

// Identity is a node's key pair.
type Identity struct {
	Private ed25519.PrivateKey
	Public  ed25519.PublicKey
}

// New creates a fresh identity (not saved).
func New() (*Identity, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("creating a key pair: %w", err)
	}
	return &Identity{Private: priv, Public: pub}, nil
}

// LoadOrCreate reads the identity in dir, creating it (and dir) on first
// use.
func LoadOrCreate(dir string) (*Identity, error) {
	path := filepath.Join(dir, KeyFile)
	id, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if id, err = New(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data dir: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.Private)
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// O_EXCL: never overwrite a key another process created meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return Load(path)
	}
	if err != nil {
		return nil, fmt.Errorf("saving the identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("saving the identity: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("saving the identity: %w", err)
	}
	return id, nil
}

// Load reads the identity at path. A missing file is an error wrapping
// fs.ErrNotExist; a file others can read, or one that does not hold an
// Ed25519 key, is an error saying so.
func Load(path string) (*Identity, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading the identity: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity key %s is readable by others (mode %v): run chmod 600 on it", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the identity: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, corrupt(path, errors.New("not a PEM private key"))
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, corrupt(path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, corrupt(path, fmt.Errorf("holds a %T, not an Ed25519 key", key))
	}
	return &Identity{Private: priv, Public: priv.Public().(ed25519.PublicKey)}, nil
}

func corrupt(path string, err error) error {
	return fmt.Errorf("identity key %s is corrupt (%w); move it away to start with a new identity, which friends will not recognise", path, err)
}

// ID identifies a node: the SHA-256 of its public key.
type ID [sha256.Size]byte

// IDOf returns the id of the node with public key pub.
func IDOf(pub ed25519.PublicKey) ID { return sha256.Sum256(pub) }

// ID returns this node's id.
func (id *Identity) ID() ID { return IDOf(id.Public) }

// idEncoding is lower-case base32 without padding: no ambiguous symbols
// when read aloud, and safe in file names and MQTT topics.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// String returns the first 80 bits of the id in base32 (16 characters):
// enough to tell nodes apart in logs and on screen.
func (i ID) String() string { return idEncoding.EncodeToString(i[:10]) }

// Hex returns the whole id in hex: how files in the data dir name peers.
func (i ID) Hex() string { return hex.EncodeToString(i[:]) }

// ParseHex reads an id written by Hex.
func ParseHex(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err == nil && len(b) != len(id) {
		err = fmt.Errorf("%d bytes, not %d", len(b), len(id))
	}
	if err != nil {
		return ID{}, fmt.Errorf("not a node id: %w", err)
	}
	copy(id[:], b)
	return id, nil
}

// Compare orders ids, to pick roles both peers agree on (who is the TLS
// client after a simultaneous open).
func (i ID) Compare(j ID) int { return bytes.Compare(i[:], j[:]) }
