package router

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/router/certapi"
)

// The router's certificates: its default one, from files, and each app's, from the
// Nomad Variables under certapi.Prefix in the app's namespace, which it follows with
// blocking queries. A certificate is served for a server name only when it covers that
// name and the name routes to the app whose namespace holds it: an app cannot serve its
// certificate for another app's host.

// appHTTPS is one app's HTTPS settings as read from Nomad.
type appHTTPS struct {
	certs    []*certapi.Cert          // every certificate, uploaded and ordered
	acme     map[string]*certapi.Cert // the certificates ordered over ACME, by domain
	redirect bool
}

// certStore is what the TLS handshake reads, without a lock.
type certStore struct {
	def  *certapi.Cert // nil: no default certificate
	apps atomic.Pointer[map[string]*appHTTPS]
}

func (s *certStore) app(name string) *appHTTPS {
	if m := s.apps.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// loadDefaultCert reads the router's default certificate from its files.
func loadDefaultCert(certFile, keyFile string) (*certapi.Cert, error) {
	cb, err := readLimited(certFile)
	if err != nil {
		return nil, fmt.Errorf("default certificate: %w", err)
	}
	kb, err := readLimited(keyFile)
	if err != nil {
		return nil, fmt.Errorf("default certificate's key: %w", err)
	}
	c, err := certapi.Parse(cb, kb, time.Now())
	if err != nil {
		return nil, fmt.Errorf("default certificate %s: %w", certFile, err)
	}
	return c, nil
}

func readLimited(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > certapi.MaxPEMBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, fi.Size(), certapi.MaxPEMBytes)
	}
	return os.ReadFile(path)
}

// certFor picks the certificate for a server name: the first of the app's certificates
// (the app the name routes to) that covers it, else the default one.
func (r *Router) certFor(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := canonicalHost(hello.ServerName)
	if host != "" {
		name := ""
		if a := r.table.Load().lookup(host); a != nil {
			name = a.name
		} else {
			name = r.appWithoutDynos(host)
		}
		if ah := r.certs.app(name); name != "" && ah != nil {
			for _, c := range ah.certs {
				if c.Covers(host) && hello.SupportsCertificate(&c.TLS) == nil {
					return &c.TLS, nil
				}
			}
		}
	}
	if r.certs.def != nil {
		return &r.certs.def.TLS, nil
	}
	return nil, fmt.Errorf("no certificate for server name %q", hello.ServerName)
}

// redirectsToHTTPS says whether the app asked for its plain HTTP requests to be
// redirected to HTTPS (certapi.SettingsPath), on a router that serves HTTPS.
func (r *Router) redirectsToHTTPS(app string) bool {
	if !r.cfg.https() {
		return false
	}
	ah := r.certs.app(app)
	return ah != nil && ah.redirect
}

// httpsVar is one HTTPS Variable as last read: its index, and what it held when it last
// held something good (a bad Variable keeps the previous good content).
type httpsVar struct {
	index    uint64
	cert     *certapi.Cert
	acme     string // the domain of a certificate ordered over ACME
	redirect bool
}

// watchCerts follows the HTTPS Variables of every app's namespace and publishes each
// app's certificates and settings. A Variable that changed is read again; one that is
// bad (a certificate that does not parse, does not match its key, or expired) is logged
// and the certificate it held before, if any, keeps serving.
func (r *Router) watchCerts(ctx context.Context) {
	known := map[string]*httpsVar{} // namespace + "\x00" + path
	r.followNomad(ctx, "failed to list the apps' certificates in nomad; serving the last ones read", "the apps' certificates listed in nomad again",
		func(q *nomadapi.QueryOptions) (*nomadapi.QueryMeta, error) {
			stubs, meta, err := r.nomad.Variables().PrefixList(certapi.Prefix, q)
			if err != nil {
				return nil, err
			}
			seen := make(map[string]bool, len(stubs))
			for _, st := range stubs {
				if strings.HasPrefix(st.Path, certapi.ChallengePrefix) {
					continue // served on request (acme.go)
				}
				k := st.Namespace + "\x00" + st.Path
				seen[k] = true
				v := known[k]
				if v != nil && v.index == st.ModifyIndex {
					continue
				}
				if v == nil {
					v = &httpsVar{}
					known[k] = v
				}
				if r.readHTTPSVar(q.Context(), st.Namespace, st.Path, v) {
					v.index = st.ModifyIndex
				}
			}
			for k := range known {
				if !seen[k] {
					delete(known, k)
				}
			}
			r.publishCerts(known)
			return meta, nil
		})
}

// readHTTPSVar reads one HTTPS Variable into v, and says whether it was read (a failure
// to read is tried again on the next change or error).
func (r *Router) readHTTPSVar(ctx context.Context, ns, path string, v *httpsVar) bool {
	q := (&nomadapi.QueryOptions{Namespace: ns}).WithContext(ctx)
	nv, _, err := r.nomad.Variables().Read(path, q)
	if err != nil {
		r.log.Error("failed to read an app's HTTPS variable", "app", ns, "path", path, "error", err)
		return false
	}
	switch {
	case path == certapi.SettingsPath:
		v.redirect = nv.Items[certapi.RedirectItem] == "true"
	case strings.HasPrefix(path, certapi.CertPrefix), strings.HasPrefix(path, certapi.ACMECertPrefix):
		c, err := certapi.Parse([]byte(nv.Items[certapi.CertItem]), []byte(nv.Items[certapi.KeyItem]), time.Now())
		if err != nil {
			if v.cert != nil {
				r.log.Error("an app's certificate is bad; the previous one keeps serving", "app", ns, "path", path, "error", err)
			} else {
				r.log.Error("an app's certificate is bad; it is not served", "app", ns, "path", path, "error", err)
			}
			return true
		}
		v.cert = c
		if name, ok := strings.CutPrefix(path, certapi.ACMECertPrefix); ok {
			v.acme = certapi.DomainOf(name)
		}
		r.log.Info("serving an app's certificate", "app", ns, "path", path, "names", strings.Join(c.Names(), ","),
			"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return true
}

// publishCerts makes the Variables read the certificates and settings handshakes use.
func (r *Router) publishCerts(known map[string]*httpsVar) {
	m := map[string]*appHTTPS{}
	for k, v := range known {
		ns, path, _ := strings.Cut(k, "\x00")
		ah := m[ns]
		if ah == nil {
			ah = &appHTTPS{}
			m[ns] = ah
		}
		if path == certapi.SettingsPath {
			ah.redirect = v.redirect
		} else if v.cert != nil {
			ah.certs = append(ah.certs, v.cert)
			if v.acme != "" {
				if ah.acme == nil {
					ah.acme = map[string]*certapi.Cert{}
				}
				ah.acme[v.acme] = v.cert
			}
		}
	}
	for _, ah := range m {
		// The certificate that lasts longest goes first.
		sort.Slice(ah.certs, func(i, j int) bool { return ah.certs[i].Leaf.NotAfter.After(ah.certs[j].Leaf.NotAfter) })
	}
	r.certs.apps.Store(&m)
}
