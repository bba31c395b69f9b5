package slug

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// davServer is a store like nginx's dav module: PUT stores, GET and HEAD serve, for
// deployer:pw only.
func davServer(t *testing.T) (*httptest.Server, string, *int) {
	t.Helper()
	var mu sync.Mutex
	files := map[string][]byte{}
	puts := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "deployer" || p != "pw" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			files[r.URL.Path] = b
			puts++
			w.WriteHeader(http.StatusCreated)
		case http.MethodHead, http.MethodGet:
			b, ok := files[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, ca, &puts
}

func TestRemote_UploadsOnceByContent(t *testing.T) {
	srv, ca, puts := davServer(t)
	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "Procfile"), []byte("web: ./web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Pack(app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRemote(srv.URL+"/slugs", "deployer", "pw", ca, "--slug-store")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		up, err := r.Upload(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if want := srv.URL + "/slugs/" + s.SHA256 + ".tar.gz"; up.Path != want || up.SHA256 != s.SHA256 {
			t.Fatalf("uploaded to %s (sha256 %s), want %s", up.Path, up.SHA256, want)
		}
	}
	if *puts != 1 {
		t.Errorf("%d PUTs for one slug uploaded twice, want 1: the second finds it by its name", *puts)
	}

	bad, _ := NewRemote(srv.URL+"/slugs/", "deployer", "wrong", ca, "--slug-store")
	if _, err := bad.Upload(context.Background(), s); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: got %v, want a 401 error", err)
	}
	untrusted, _ := NewRemote(srv.URL+"/slugs/", "deployer", "pw", "", "--slug-store")
	if _, err := untrusted.Upload(context.Background(), s); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("store's CA not given: got %v, want a certificate error", err)
	}
}

func TestNewRemote_BadSettings(t *testing.T) {
	for _, tc := range []struct{ url, user, pw, want string }{
		{"http://store/slugs/", "", "", "must be an https://"},
		{"https://u:p@store/", "", "", "without credentials"},
		{"https://store/", "deployer", "", "needs a password"},
		{"store/slugs", "", "", "must be an https://"},
	} {
		if _, err := NewRemote(tc.url, tc.user, tc.pw, "", "--slug-store"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.url, err, tc.want)
		}
	}
}
