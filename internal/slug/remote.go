package slug

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// uploadTimeout bounds the upload of one slug.
const uploadTimeout = 10 * time.Minute

// Remote is a grid's slug store that every host reaches over HTTPS: a server that stores
// a PUT body under its path and serves it back on GET (examples/cluster/slug-store).
// Slugs are named <sha256>.tar.gz below URL.
type Remote struct {
	// URL is the store's base address, e.g. https://10.0.0.5:8443/slugs/.
	URL string
	// Username and Password are a deployer's credentials (basic auth).
	Username, Password string
	// CAFile verifies the store's certificate (empty: the system's CAs).
	CAFile string
}

// NewRemote checks a store's settings; where names where they came from, for errors.
func NewRemote(rawURL, username, password, caFile, where string) (*Remote, error) {
	u, err := StoreURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if (username == "") != (password == "") {
		return nil, fmt.Errorf("%s: a user name needs a password and a password a user name", where)
	}
	return &Remote{URL: u.String(), Username: username, Password: password, CAFile: caFile}, nil
}

// StoreURL parses a slug store's base address: https, no credentials, query or
// fragment, ending in a slash.
func StoreURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must be an https:// address without credentials, query or fragment", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// maxCAFile bounds a CA file.
const maxCAFile = 1 << 20

// StoreTLS is the TLS configuration of a slug store's clients: the CAs of caFile, or the
// system's when it is "".
func StoreTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := ReadSmallFile(caFile, maxCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// IsRemote tells whether a --slug-store value names a remote store rather than a directory.
func IsRemote(store string) bool {
	return strings.HasPrefix(store, "https://") || strings.HasPrefix(store, "http://")
}

// ReadSmallFile reads a settings file (a CA, a password) of at most limit bytes.
func ReadSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d KiB", path, limit>>10)
	}
	return b, nil
}

func (r *Remote) client() (*http.Client, error) {
	cfg, err := StoreTLS(r.CAFile)
	if err != nil {
		return nil, fmt.Errorf("slug store CA: %w", err)
	}
	return &http.Client{
		Timeout:   uploadTimeout,
		Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment},
		// The credentials go to the store and nowhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// Upload puts the packed slug s into the store, unless the store has it already (slugs
// are named by their content), and returns it with Path set to its address there.
func (r *Remote) Upload(ctx context.Context, s *Slug) (*Slug, error) {
	c, err := r.client()
	if err != nil {
		return nil, err
	}
	addr := r.URL + s.SHA256 + ".tar.gz"
	head, err := r.request(ctx, http.MethodHead, addr, nil, 0)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(head)
	if err != nil {
		return nil, fmt.Errorf("slug store: %w", err)
	}
	resp.Body.Close()
	out := &Slug{SHA256: s.SHA256, Size: s.Size, Path: addr}
	if resp.StatusCode == http.StatusOK && resp.ContentLength == s.Size {
		return out, nil
	}
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("slug store: HEAD %s answered %s", addr, resp.Status)
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	put, err := r.request(ctx, http.MethodPut, addr, f, s.Size)
	if err != nil {
		return nil, err
	}
	resp, err = c.Do(put)
	if err != nil {
		return nil, fmt.Errorf("slug store: failed to upload %s: %w", addr, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusNoContent, http.StatusOK:
		return out, nil
	default:
		return nil, fmt.Errorf("slug store: PUT %s answered %s", addr, resp.Status)
	}
}

func (r *Remote) request(ctx context.Context, method, addr string, body io.Reader, size int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, addr, body)
	if err != nil {
		return nil, fmt.Errorf("slug store: %w", err)
	}
	if body != nil {
		req.ContentLength = size
	}
	if r.Username != "" {
		req.SetBasicAuth(r.Username, r.Password)
	}
	return req, nil
}
