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
// --cacert, or to a browser), made when the grid starts.

// RouterTLSAddr is the router's HTTPS address, host:port.
func (o Options) RouterTLSAddr() string { return fmt.Sprintf("%s:%d", o.Bind, o.RouterPort+3) }

// RouterCAFile is the PEM certificate of the CA that issued the router's default
// certificate.
func (o Options) RouterCAFile() string { return filepath.Join(o.DataDir, "router-tls", "ca.pem") }

// makeRouterCert writes a CA and the router's default certificate and key, valid for a
// year, and returns the certificate's and the key's files.
func (o Options) makeRouterCert() (certFile, keyFile string, err error) {
	dir := filepath.Dir(o.RouterCAFile())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Dynogrid local grid CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: o.RouterDomain},
		DNSNames: []string{o.RouterDomain, "*." + o.RouterDomain}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, b := range map[string][]byte{
		o.RouterCAFile(): pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certFile:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:          pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", "", err
		}
	}
	return certFile, keyFile, nil
}
