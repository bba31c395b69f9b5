// Package certapi is the contract of an app's HTTPS settings between `dyno certs` and
// the router: where an app's certificates and its redirect setting live in Nomad, and the
// checks a certificate and its key must pass. `dyno certs:add` (internal/cli/certs.go)
// runs them before it stores a certificate, and the router (router/certs.go) again before
// it serves one, so that a bad one is refused with the same error in both places.
package certapi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix is where, in each app's namespace, the app's HTTPS Variables live: the router's
// Nomad token may list and read these and no other variable of an app (besides its
// router log key). An app's dynos may not: their workload identity reads only
// nomad/jobs/<app>/*.
const Prefix = "dyno/https/"

// CertPrefix + name is the Variable of one certificate, with items CertItem (the PEM
// chain, leaf first) and KeyItem (the PEM private key). name is the domain the
// certificate was added for (VariableName).
const (
	CertPrefix = Prefix + "certs/"
	CertItem   = "cert"
	KeyItem    = "key"
)

// ACMECertPrefix + name is the Variable of a certificate the router ordered over ACME
// for the domain name stands for (VariableName), with the items of a certificate's.
// ChallengePrefix + token is the Variable of an HTTP-01 challenge under way, its key
// authorization in ChallengeItem, which every router serves. The router writes these,
// and nothing else.
const (
	ACMEPrefix      = Prefix + "acme/"
	ACMECertPrefix  = ACMEPrefix + "certs/"
	ChallengePrefix = ACMEPrefix + "challenges/"
	ChallengeItem   = "key_authorization"
)

// SettingsPath is the Variable of the app's HTTPS settings; its item RedirectItem "true"
// makes the router redirect the app's plain HTTP requests to HTTPS.
const (
	SettingsPath = Prefix + "settings"
	RedirectItem = "redirect"
)

// MaxPEMBytes bounds a certificate chain and a key, each.
const MaxPEMBytes = 64 << 10

// maxChain bounds the certificates of a chain.
const maxChain = 8

// Cert is a certificate and key that passed Parse.
type Cert struct {
	TLS  tls.Certificate
	Leaf *x509.Certificate
	// ChainPEM and KeyPEM are the chain and the key as Parse read them, PEM blocks
	// alone: what is stored, without any text that came around the blocks.
	ChainPEM, KeyPEM []byte
}

// Parse checks a PEM certificate chain and its PEM private key, as of now: each no larger
// than MaxPEMBytes, the chain made only of certificates (leaf first, at most 8), the key
// of a kind TLS can use and the leaf's own, the leaf valid now and naming at least one
// DNS name. The error says which of these failed.
func Parse(certPEM, keyPEM []byte, now time.Time) (*Cert, error) {
	if len(certPEM) > MaxPEMBytes {
		return nil, fmt.Errorf("certificate: %d bytes, more than the %d a chain may have", len(certPEM), MaxPEMBytes)
	}
	if len(keyPEM) > MaxPEMBytes {
		return nil, fmt.Errorf("key: %d bytes, more than the %d a key may have", len(keyPEM), MaxPEMBytes)
	}
	var chain [][]byte
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certificate: block %d is a %q, not a CERTIFICATE (is the key in the certificate's place?)", len(chain)+1, b.Type)
		}
		chain = append(chain, b.Bytes)
		if len(chain) > maxChain {
			return nil, fmt.Errorf("certificate: more than %d certificates in the chain", maxChain)
		}
	}
	if len(chain) == 0 {
		return nil, errors.New("certificate: no PEM CERTIFICATE block found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("certificate: text after the last PEM block")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("certificate: the first certificate does not parse: %w", err)
	}
	if err := checkLeafKey(leaf.PublicKey); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	for i, der := range chain[1:] {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("certificate: certificate %d of the chain does not parse: %w", i+2, err)
		}
	}
	kb, krest := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("key: no PEM block found")
	}
	if strings.TrimSpace(string(krest)) != "" {
		return nil, errors.New("key: more than one PEM block")
	}
	if !strings.HasSuffix(kb.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("key: the PEM block is a %q, not a PRIVATE KEY (is the certificate in the key's place?)", kb.Type)
	}
	key, err := parseKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if !samePublicKey(leaf.PublicKey, key) {
		return nil, errors.New("the key is not the certificate's: its public key differs from the certificate's")
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("certificate: not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if !now.Before(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate: expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(leaf.DNSNames) == 0 {
		return nil, errors.New("certificate: names no DNS name (subjectAltName); browsers ignore the common name")
	}
	for _, n := range leaf.DNSNames {
		if strings.IndexFunc(n, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			return nil, fmt.Errorf("certificate: the DNS name %q has a space, a control character or a character outside ASCII", n)
		}
	}
	var chainPEM []byte
	for _, der := range chain {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return &Cert{TLS: tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, Leaf: leaf,
		ChainPEM: chainPEM, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: kb.Type, Bytes: kb.Bytes})}, nil
}

// maxRSABits bounds an RSA key: the router signs each handshake with it, and a signature
// by a 16384-bit key costs about a hundred times one by a 2048-bit key, on CPU the
// router shares between every app.
const maxRSABits = 4096

// checkLeafKey refuses a certificate whose key the router cannot, or should not, sign
// handshakes with.
func checkLeafKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n > maxRSABits {
			return fmt.Errorf("an RSA key of %d bits; at most %d, as each handshake signs with it", n, maxRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return fmt.Errorf("an ECDSA key on curve %s; TLS signs with P-256, P-384 or P-521", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("a %T key, which TLS cannot use: want RSA, ECDSA or Ed25519", pub)
	}
	return nil
}

// parseKey reads a PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key.
func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", k)
		}
		if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits; 2048 or more are needed", rk.N.BitLen())
		}
		return s, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits; 2048 or more are needed", k.N.BitLen())
		}
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8, RSA or EC private key")
}

func samePublicKey(pub crypto.PublicKey, key crypto.Signer) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return p.Equal(key.Public())
	case *ecdsa.PublicKey:
		return p.Equal(key.Public())
	case ed25519.PublicKey:
		return p.Equal(key.Public())
	}
	return false
}

// Covers says whether the certificate is valid for host (its DNS names, wildcards
// included, as a browser checks).
func (c *Cert) Covers(host string) bool {
	return c.Leaf.VerifyHostname(host) == nil
}

// Names are the DNS names of the certificate.
func (c *Cert) Names() []string { return c.Leaf.DNSNames }

// VariableName is the name under CertPrefix of a certificate added for domain: the domain
// with its dots written "_" and a wildcard's "*" written "~" (Variable paths take
// neither). DomainOf reverses it.
func VariableName(domain string) string {
	return strings.NewReplacer(".", "_", "*", "~").Replace(strings.ToLower(domain))
}

// DomainOf is the domain of a certificate's Variable name (VariableName).
func DomainOf(name string) string {
	return strings.NewReplacer("_", ".", "~", "*").Replace(name)
}

// maxVariablePath is the longest Variable path Nomad takes.
const maxVariablePath = 128

// MaxDomainBytes is the longest domain a certificate can be added for: what a
// Variable's path leaves after CertPrefix.
const MaxDomainBytes = maxVariablePath - len(CertPrefix)

// CheckDomain refuses a domain a certificate cannot be added for: it must be a DNS name
// (letters, digits, hyphens, dots; a leading "*." for a wildcard) of MaxDomainBytes
// (111) characters or fewer.
func CheckDomain(d string) error {
	if d == "" || len(d) > MaxDomainBytes {
		return fmt.Errorf("domain %q: must be 1 to %d characters", d, MaxDomainBytes)
	}
	name := strings.TrimPrefix(d, "*.")
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("domain %q: label %q is not a DNS label", d, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("domain %q: label %q has a %q", d, label, c)
			}
		}
	}
	return nil
}
