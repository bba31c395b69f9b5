package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"golang.org/x/crypto/acme"

	"github.com/dynogrid/dynogrid/router/certapi"
)

// Automatic certificates over ACME (RFC 8555), with HTTP-01 challenges that the router
// answers on its plain HTTP listener. Every acmeCheckEvery, the router looks at each
// host it routes (<app>.<domain> and the custom domains) of the apps whose queue it owns
// (every app, without cluster mode): a host that no uploaded certificate covers for a
// third of its life or more, and whose ordered certificate is missing or has less than
// a third of its life left, gets a certificate ordered for it, one host at a time. The
// certificate is stored in the app's namespace (certapi.ACMECertPrefix), where every
// router reads it (certs.go) and swaps it in without a restart. The challenge under way
// is stored there too (certapi.ChallengePrefix), so that whichever router the ACME
// server reaches answers it. A host whose order failed is tried again after a minute,
// then twice as long each time, up to a day.

// acmeChallengePath is where an ACME server fetches an HTTP-01 challenge's answer.
const acmeChallengePath = "/.well-known/acme-challenge/"

const (
	acmeCheckEvery  = 5 * time.Second
	acmeOrderWithin = 2 * time.Minute
	acmeFirstRetry  = time.Minute
	acmeLastRetry   = 24 * time.Hour
)

type acmeState struct {
	client     *acme.Client
	challenges sync.Map // token: key authorization, of this router's orders under way

	retry map[string]acmeRetry // host: when its order may be tried again
}

type acmeRetry struct {
	at    time.Time
	after time.Duration
}

// newACME sets up the ACME client: its account key, from Config.ACMEAccountKeyFile
// (made there the first time), and its HTTP client, trusting Config.ACMECAFile when set.
func newACME(cfg Config) (*acmeState, error) {
	key, err := loadOrMakeKey(cfg.ACMEAccountKeyFile)
	if err != nil {
		return nil, fmt.Errorf("ACME account key %s: %w", cfg.ACMEAccountKeyFile, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.ACMECAFile != "" {
		b, err := readLimited(cfg.ACMECAFile)
		if err != nil {
			return nil, fmt.Errorf("ACME server's CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ACME server's CA %s: no PEM certificate", cfg.ACMECAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &acmeState{
		client: &acme.Client{Key: key, DirectoryURL: cfg.ACMEDirectory, UserAgent: "dyno-router",
			HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute}},
		retry: map[string]acmeRetry{},
	}, nil
}

func loadOrMakeKey(path string) (*ecdsa.PrivateKey, error) {
	if b, err := readLimited(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM block")
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T, want an ECDSA key", k)
		}
		return ek, nil
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return k, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// runACME registers the router's account (or finds it) and orders certificates until
// ctx ends.
func (r *Router) runACME(ctx context.Context) {
	var contact []string
	if r.cfg.ACMEEmail != "" {
		contact = []string{"mailto:" + r.cfg.ACMEEmail}
	}
	bo := backoff{}
	for ctx.Err() == nil {
		_, err := r.acme.client.Register(ctx, &acme.Account{Contact: contact}, acme.AcceptTOS)
		if err == nil || errors.Is(err, acme.ErrAccountAlreadyExists) {
			break
		}
		r.log.Error("failed to register with the ACME server; trying again", "directory", r.cfg.ACMEDirectory, "error", err)
		bo.wait(ctx)
	}
	tick := time.NewTicker(acmeCheckEvery)
	defer tick.Stop()
	for {
		r.acmeRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// acmeRound orders a certificate for each host that needs one, one at a time.
func (r *Router) acmeRound(ctx context.Context) {
	for host, a := range r.table.Load().hosts {
		if ctx.Err() != nil {
			return
		}
		if r.cluster != nil && !r.cluster.owns(a.name) || !r.needsACMECert(a.name, host, time.Now()) {
			continue
		}
		if rt, ok := r.acme.retry[host]; ok && time.Now().Before(rt.at) {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, acmeOrderWithin)
		err := r.orderCert(octx, a.name, host)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			rt := r.acme.retry[host]
			rt.after = min(max(2*rt.after, acmeFirstRetry), acmeLastRetry)
			rt.at = time.Now().Add(rt.after)
			r.acme.retry[host] = rt
			r.log.Error("failed to order a certificate over ACME", "app", a.name, "host", host, "retry_in", rt.after, "error", err)
			continue
		}
		delete(r.acme.retry, host)
	}
}

// needsACMECert says whether host of app needs a certificate ordered: no uploaded one
// covers it with a third of its life left, nor an ordered one.
func (r *Router) needsACMECert(app, host string, now time.Time) bool {
	if certapi.CheckDomain(host) != nil || strings.HasPrefix(host, "*") {
		return false
	}
	ah := r.certs.app(app)
	if ah == nil {
		return true
	}
	for _, c := range ah.certs {
		if c.Covers(host) && !renewDue(c, now) {
			return false
		}
	}
	return true
}

// renewDue says whether a certificate has less than a third of its life left.
func renewDue(c *certapi.Cert, now time.Time) bool {
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	return c.Leaf.NotAfter.Sub(now) < life/3
}

// orderCert orders a certificate for host over ACME, answering its HTTP-01 challenge,
// and stores it in the app's namespace.
func (r *Router) orderCert(ctx context.Context, app, host string) error {
	cl := r.acme.client
	r.log.Info("ordering a certificate over ACME", "app", app, "host", host)
	o, err := cl.AuthorizeOrder(ctx, acme.DomainIDs(host))
	if err != nil {
		return fmt.Errorf("new order: %w", err)
	}
	orderURL := o.URI // the answers about the order that follow may not repeat it
	for _, u := range o.AuthzURLs {
		z, err := cl.GetAuthorization(ctx, u)
		if err != nil {
			return fmt.Errorf("authorization: %w", err)
		}
		if z.Status == acme.StatusValid {
			continue
		}
		var chal *acme.Challenge
		for _, c := range z.Challenges {
			if c.Type == "http-01" {
				chal = c
			}
		}
		if chal == nil {
			return errors.New("the ACME server offers no http-01 challenge")
		}
		ka, err := cl.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		if err := r.publishChallenge(ctx, app, chal.Token, ka); err != nil {
			return err
		}
		defer r.withdrawChallenge(app, chal.Token)
		if _, err := cl.Accept(ctx, chal); err != nil {
			return fmt.Errorf("accept the challenge: %w", err)
		}
		if _, err := cl.WaitAuthorization(ctx, z.URI); err != nil {
			return fmt.Errorf("authorization of %s: %w", host, err)
		}
	}
	if o, err = cl.WaitOrder(ctx, orderURL); err != nil {
		return fmt.Errorf("order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{host}}, key)
	if err != nil {
		return err
	}
	ders, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		// A server that answers the finalization without the order's Location (Pebble
		// does) leaves the client without the order to wait for: wait on it by its
		// own URL, and fetch the certificate once it is issued.
		done, werr := cl.WaitOrder(ctx, orderURL)
		if werr != nil || done.CertURL == "" {
			return fmt.Errorf("finalize: %w", err)
		}
		if ders, err = cl.FetchCert(ctx, done.CertURL, true); err != nil {
			return fmt.Errorf("fetch the certificate: %w", err)
		}
	}
	var chain []byte
	for _, der := range ders {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	c, err := certapi.Parse(chain, keyPEM, time.Now())
	if err != nil {
		return fmt.Errorf("the certificate the ACME server issued: %w", err)
	}
	v := &nomadapi.Variable{Namespace: app, Path: certapi.ACMECertPrefix + certapi.VariableName(host),
		Items: nomadapi.VariableItems{certapi.CertItem: string(chain), certapi.KeyItem: string(keyPEM)}}
	if _, _, err := r.nomad.Variables().Create(v, (&nomadapi.WriteOptions{Namespace: app}).WithContext(ctx)); err != nil {
		return fmt.Errorf("store the certificate: %w", err)
	}
	r.log.Info("ordered a certificate over ACME", "app", app, "host", host, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (r *Router) publishChallenge(ctx context.Context, app, token, keyAuth string) error {
	r.acme.challenges.Store(token, keyAuth)
	v := &nomadapi.Variable{Namespace: app, Path: certapi.ChallengePrefix + token,
		Items: nomadapi.VariableItems{certapi.ChallengeItem: keyAuth}}
	if _, _, err := r.nomad.Variables().Create(v, (&nomadapi.WriteOptions{Namespace: app}).WithContext(ctx)); err != nil {
		return fmt.Errorf("store the challenge: %w", err)
	}
	return nil
}

func (r *Router) withdrawChallenge(app, token string) {
	r.acme.challenges.Delete(token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.nomad.Variables().Delete(certapi.ChallengePrefix+token, (&nomadapi.WriteOptions{Namespace: app}).WithContext(ctx)); err != nil {
		r.log.Warn("failed to remove an ACME challenge's variable", "app", app, "error", err)
	}
}

// isACMEChallenge says whether a request fetches an HTTP-01 challenge's answer, which
// the router gives itself (on plain HTTP, before any redirect).
func (r *Router) isACMEChallenge(req *http.Request) bool {
	return r.acme != nil && req.TLS == nil && req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, acmeChallengePath)
}

// serveACMEChallenge answers an HTTP-01 challenge: the key authorization of an order of
// this router's, or of the app's challenge Variable (another router's order).
func (r *Router) serveACMEChallenge(w http.ResponseWriter, req *http.Request, rec *record) {
	token := strings.TrimPrefix(req.URL.Path, acmeChallengePath)
	ka := ""
	if v, ok := r.acme.challenges.Load(token); ok {
		ka = v.(string)
	} else if validToken(token) {
		host := canonicalHost(req.Host)
		name := ""
		if a := r.table.Load().lookup(host); a != nil {
			name = a.name
		}
		if name != "" {
			ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
			v, _, err := r.nomad.Variables().Read(certapi.ChallengePrefix+token, (&nomadapi.QueryOptions{Namespace: name}).WithContext(ctx))
			cancel()
			if err == nil {
				ka = v.Items[certapi.ChallengeItem]
			}
		}
	}
	h := w.Header()
	if ka == "" {
		rec.code, rec.status = codeNoChallenge, http.StatusNotFound
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	rec.code, rec.status = codeChallenge, http.StatusOK
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", fmt.Sprint(len(ka)))
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write([]byte(ka))
	rec.bytes = int64(n)
}

// validToken says whether an ACME token may be part of a Variable path: base64url, of
// a sane length.
func validToken(t string) bool {
	if len(t) < 16 || len(t) > 100 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
