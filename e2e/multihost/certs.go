package multihost

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// testCA is the grid's certificate authority, made at test time: each host gets its
// certificates from it, as an operator's would with `consul tls cert create`.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA certificate's PEM file.
	File string
}

func newTestCA(dir string) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Dynogrid test grid CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &testCA{cert: cert, key: key, File: filepath.Join(dir, "ca.pem")}
	return ca, os.WriteFile(ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// issue writes <dir>/<name>.pem and <dir>/<name>-key.pem: a certificate for the DNS
// names and IP addresses given, for servers and clients both.
func (ca *testCA) issue(dir, name string, dnsNames []string, ips ...string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, ip := range append(ips, "127.0.0.1") {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// issueHost gives host h its Consul and Nomad certificates in <h.Dir>/tls, with the
// names the agents check: server.<dc>.consul and server.global.nomad on a server host,
// client.* on the others.
func (ca *testCA) issueHost(h *Host, role string) error {
	dir := filepath.Join(h.Dir, "tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := ca.issue(dir, "consul", []string{role + "." + datacenter + ".consul", "localhost"}, h.Addr); err != nil {
		return fmt.Errorf("certificate of %s: %w", h.Name, err)
	}
	if err := ca.issue(dir, "nomad", []string{role + ".global.nomad", "localhost"}, h.Addr); err != nil {
		return fmt.Errorf("certificate of %s: %w", h.Name, err)
	}
	b, err := os.ReadFile(ca.File)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca.pem"), b, 0o644)
}

// pool is a certificate pool of the CA alone.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// tlsConfig trusts the grid's CA only.
func (ca *testCA) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12}
}

// gossipKey is a new 32-byte gossip encryption key, base64, as `consul keygen` makes.
func gossipKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
