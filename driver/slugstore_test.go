package driver

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shoenig/test/must"
)

// storeServer is an HTTPS slug store that serves dir to reader:secret and counts the
// requests that carried credentials.
func storeServer(t *testing.T, dir string) (*httptest.Server, *atomic.Int32, string) {
	t.Helper()
	var authed atomic.Int32
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			authed.Add(1)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/elsewhere/"):
			http.Redirect(w, r, "/slugs/"+filepath.Base(r.URL.Path), http.StatusFound)
		case !strings.HasPrefix(r.URL.Path, "/slugs/"):
			http.NotFound(w, r)
		default:
			if u, p, ok := r.BasicAuth(); !ok || u != "reader" || p != "secret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="slugs"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			http.StripPrefix("/slugs", files).ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	must.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	return srv, &authed, ca
}

func TestSlugStore_CredentialsGoToTheStoreOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, sum := makeSlug(t, dir, []tarEntry{{name: "Procfile", body: "web: ./web\n"}})
	srv, authed, ca := storeServer(t, dir)
	pw := filepath.Join(t.TempDir(), "password")
	must.NoError(t, os.WriteFile(pw, []byte("secret\n"), 0o600))
	cfg := Config{SlugStoreURL: srv.URL + "/slugs", SlugStoreUsername: "reader", SlugStorePasswordFile: pw, SlugStoreCAFile: ca}
	store, err := cfg.slugStore()
	must.NoError(t, err)
	c := newSlugCache(filepath.Join(dir, "cache"), t.TempDir(), store)

	// A slug of the store's address: fetched with the reader's credentials, over TLS
	// checked against the configured CA.
	got, err := c.Ensure(context.Background(), srv.URL+"/slugs/"+filepath.Base(src), sum)
	must.NoError(t, err)
	must.Eq(t, filepath.Join(dir, "cache", sum), got)
	must.Eq(t, int32(1), authed.Load())

	// A slug elsewhere on the same server (which would redirect into the store): not
	// fetched at all.
	other := newSlugCache(filepath.Join(dir, "cache2"), t.TempDir(), store)
	_, err = other.Ensure(context.Background(), srv.URL+"/elsewhere/"+filepath.Base(src), sum)
	must.ErrorContains(t, err, "slug_store_url")
	_, err = other.Ensure(context.Background(), srv.URL+"/slugs/../elsewhere/"+filepath.Base(src), sum)
	must.ErrorContains(t, err, "slug_store_url")
	must.Eq(t, int32(1), authed.Load())
}

func TestSlugStore_BadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	must.NoError(t, os.WriteFile(pw, []byte("secret"), 0o600))
	empty := filepath.Join(dir, "empty")
	must.NoError(t, os.WriteFile(empty, nil, 0o600))
	big := filepath.Join(dir, "big")
	must.NoError(t, os.WriteFile(big, make([]byte, maxSecretFile+1), 0o600))
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"credentials without store", Config{SlugStoreUsername: "r", SlugStorePasswordFile: pw}, "slug_store_url: must be set"},
		{"plain http", Config{SlugStoreURL: "http://store/slugs/"}, "must be an https:// address"},
		{"credentials in URL", Config{SlugStoreURL: "https://r:p@store/slugs/"}, "without credentials"},
		{"user without password", Config{SlugStoreURL: "https://store/", SlugStoreUsername: "r"}, "set both or neither"},
		{"missing password file", Config{SlugStoreURL: "https://store/", SlugStoreUsername: "r", SlugStorePasswordFile: filepath.Join(dir, "nope")}, "slug_store_password_file"},
		{"empty password", Config{SlugStoreURL: "https://store/", SlugStoreUsername: "r", SlugStorePasswordFile: empty}, "is empty"},
		{"huge password file", Config{SlugStoreURL: "https://store/", SlugStoreUsername: "r", SlugStorePasswordFile: big}, "larger than"},
		{"CA not PEM", Config{SlugStoreURL: "https://store/", SlugStoreCAFile: pw}, "no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.slugStore()
			must.ErrorContains(t, err, tc.wantErr)
		})
	}
}
