package certapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

func TestParseRefusesBadCertificates(t *testing.T) {
	ca := testutil.NewCA(t)
	cert, key := ca.IssueNow(t, "www.shop.test")
	_, otherKey := ca.IssueNow(t, "www.shop.test")
	future, futureKey := ca.Issue(t, []string{"www.shop.test"}, time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
	expired, expiredKey := ca.Issue(t, []string{"www.shop.test"}, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
	nul, nulKey := ca.IssueNow(t, "a\x00.shop.test")
	var chain []byte
	for i := 0; i < 9; i++ {
		chain = append(chain, cert...)
	}
	for name, tc := range map[string]struct {
		cert, key []byte
		want      string
	}{
		"mismatch":      {cert, otherKey, "the key is not the certificate's"},
		"expired":       {expired, expiredKey, "expired at"},
		"not yet valid": {future, futureKey, "not valid before"},
		"garbage":       {[]byte("garbage"), key, "no PEM CERTIFICATE block"},
		"swapped":       {key, cert, "not a CERTIFICATE"},
		"trailing text": {append(append([]byte{}, cert...), "junk"...), key, "text after the last PEM block"},
		"too large":     {make([]byte, MaxPEMBytes+1), key, "more than the 65536"},
		"large key":     {cert, make([]byte, MaxPEMBytes+1), "key: 65537 bytes"},
		"long chain":    {chain, key, "more than 8 certificates"},
		"small RSA":     {cert, smallPEM, "RSA key of 1024 bits"},
		"no key":        {cert, nil, "key: no PEM block"},
		"NUL in a name": {nul, nulKey, `the DNS name "a\x00.shop.test" has a space, a control character`},
		"garbage key":   {cert, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "not a PKCS#8, RSA or EC private key"},
	} {
		if _, err := Parse(tc.cert, tc.key, time.Now()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	c, err := Parse(cert, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Covers("www.shop.test") || c.Covers("shop.test") {
		t.Errorf("covers: %v", c.Names())
	}
	// Text around the blocks (openssl's "Bag Attributes", or anything else) is taken,
	// and left out of what is stored.
	around, err := Parse(append([]byte("Bag Attributes\n\x1b[2J\n"), cert...), append([]byte("friendlyName: x\n"), key...), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(around.ChainPEM) != string(cert) || !strings.HasPrefix(string(around.KeyPEM), "-----BEGIN ") {
		t.Errorf("stored PEM kept the text around the blocks: %q, %q", around.ChainPEM[:min(40, len(around.ChainPEM))], around.KeyPEM[:min(40, len(around.KeyPEM))])
	}
}

func TestVariableNames(t *testing.T) {
	for _, d := range []string{"www.shop.test", "*.shop.test", "a-b.c"} {
		n := VariableName(d)
		if strings.ContainsAny(n, ".*") || DomainOf(n) != d {
			t.Errorf("%s: variable name %q, back %q", d, n, DomainOf(n))
		}
	}
	for _, bad := range []string{"", "shop..test", "-a.test", "a_b.test", "www.shop.test/..", strings.Repeat("a", 112)} {
		if CheckDomain(bad) == nil {
			t.Errorf("domain %q accepted", bad)
		}
	}
	if err := CheckDomain("*.shop.test"); err != nil {
		t.Errorf("wildcard refused: %v", err)
	}
}

// selfSigned is a PEM certificate for www.shop.test carrying pub, signed by a key of
// its own (Parse checks the leaf, not its issuer).
func selfSigned(t *testing.T, pub any) []byte {
	t.Helper()
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"www.shop.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestParseRefusesKeysTheRouterShouldNotSignWith: an app could slow every app's
// handshakes with a certificate for a huge RSA key (the router signs each handshake of
// its hosts with it), or break its own with a curve TLS does not sign with. Both are
// refused by name, before the key is even read.
func TestParseRefusesKeysTheRouterShouldNotSignWith(t *testing.T) {
	t.Parallel()
	// A modulus of the size, odd; the certificate needs no private key to be made.
	n := new(big.Int).SetBytes(append([]byte{0x80}, make([]byte, 16384/8-1)...))
	n.SetBit(n, 0, 1)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, key := testutil.NewCA(t).IssueNow(t, "www.shop.test")
	for name, tc := range map[string]struct {
		cert []byte
		want string
	}{
		"RSA 16384": {selfSigned(t, &rsa.PublicKey{N: n, E: 65537}), "an RSA key of 16384 bits; at most 4096"},
		"P-224":     {selfSigned(t, &p224.PublicKey), "curve P-224"},
	} {
		if _, err := Parse(tc.cert, key, time.Now()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
}
