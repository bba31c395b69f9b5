package devgrid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// The local grid's router serves HTTPS with a default certificate for <domain> and
// *.<domain>, issued by a CA of the grid's own (RouterCAFile: give it to curl with
// --cacert, or to a browser), made when the grid starts. The same CA issues the
// certificate of the grid's ACME server (pebble.go).

// RouterTLSAddr is the router's HTTPS address, host:port.
func (o Options) RouterTLSAddr() string { return fmt.Sprintf("%s:%d", o.Bind, o.RouterPort+3) }

// RouterCAFile is the PEM certificate of the grid's CA, which issued the router's
// default certificate.
func (o Options) RouterCAFile() string { return filepath.Join(o.tlsDir(), "ca.pem") }

func (o Options) tlsDir() string { return filepath.Join(o.DataDir, "router-tls") }

// gridCA is the grid's CA, as made by newGridCA.
type gridCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newGridCA makes the grid's CA, valid for a year, and writes its certificate to
// RouterCAFile.
func (o Options) newGridCA() (*gridCA, error) {
	if err := os.MkdirAll(o.tlsDir(), 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Dynogrid local grid CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(o.RouterCAFile(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return &gridCA{cert: cert, key: key}, nil
}

// issue writes a certificate for names, valid for a year, and its key, as name.pem and
// name-key.pem in the grid's TLS directory, and returns the two files.
func (o Options) issue(ca *gridCA, name string, names ...string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	leaf := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(o.tlsDir(), name+".pem"), filepath.Join(o.tlsDir(), name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
