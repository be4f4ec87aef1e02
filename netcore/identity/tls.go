package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ALPN is the protocol P2PD sessions negotiate in TLS.
const ALPN = "p2pd/1"

// certLifetime is how long the self-signed certificate claims to be valid.
// Nothing checks it (peers pin keys, not certificates), but TLS libraries
// want a sane window; clock skew of a day is tolerated.
const certLifetime = 10 * 365 * 24 * time.Hour

// ErrWrongPeer is the error when a peer's key is not the one pinned.
var ErrWrongPeer = errors.New("peer presented a different key than its address carries")

// certificate makes a self-signed certificate for the identity's key.
func (id *Identity) certificate() (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "p2pd " + id.ID().String()},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public, id.Private)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Private}, nil
}

// TLSConfig returns a TLS 1.3 configuration for a session with the peer
// whose key is want, in either role. Both sides present their certificate;
// the connection fails with ErrWrongPeer unless the peer's certificate
// carries want and proves it holds the matching private key (TLS 1.3's
// CertificateVerify). A nil want accepts any peer key (a server taking
// connections from strangers); PeerKey then tells who connected.
func (id *Identity) TLSConfig(want ed25519.PublicKey) (*tls.Config, error) {
	cert, err := id.certificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPN},
		ClientAuth:   tls.RequireAnyClientCert,
		// Chains are not verified against authorities: the key is pinned
		// below, which is stronger for a known peer.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			key, err := keyOf(raw)
			if err != nil {
				return err
			}
			if want != nil && !bytes.Equal(key, want) {
				return fmt.Errorf("%w (got %s, want %s)", ErrWrongPeer, IDOf(key), IDOf(want))
			}
			return nil
		},
	}, nil
}

// keyOf returns the Ed25519 key of a peer's self-signed certificate.
func keyOf(raw [][]byte) (ed25519.PublicKey, error) {
	if len(raw) != 1 {
		return nil, fmt.Errorf("peer sent %d certificates, want one", len(raw))
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	key, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("peer certificate holds a %T key, want Ed25519", cert.PublicKey)
	}
	// The signature check is belt and braces: TLS 1.3's CertificateVerify
	// already proved the peer holds the key.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("peer certificate is not self-signed by its key: %w", err)
	}
	return key, nil
}

// PeerKey returns the key the peer of an established TLS connection proved
// it holds.
func PeerKey(cs tls.ConnectionState) (ed25519.PublicKey, error) {
	if len(cs.PeerCertificates) != 1 {
		return nil, errors.New("the peer presented no certificate")
	}
	key, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("the peer's certificate holds no Ed25519 key")
	}
	return key, nil
}
