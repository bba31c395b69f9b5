package driver

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoenig/test/must"
	"golang.org/x/sys/unix"
)

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// makeSlug writes a .tar.gz of entries into dir, a slug store, as <sha256>.tar.gz and
// returns its path and sha256.
func makeSlug(t *testing.T, dir string, entries []tarEntry) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		must.NoError(t, tw.WriteHeader(hdr))
		if typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			must.NoError(t, err)
		}
	}
	must.NoError(t, tw.Close())
	must.NoError(t, gz.Close())
	sum := sha256.Sum256(buf.Bytes())
	must.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, hex.EncodeToString(sum[:])+".tar.gz")
	must.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p, hex.EncodeToString(sum[:])
}

func TestSlugCache_UnpacksOnceAndShares(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, sum := makeSlug(t, dir, []tarEntry{
		{name: "Procfile", body: "web: ./bin/web\n"},
		{name: "bin/web", body: "#!/bin/sh\necho hi\n", mode: 0o4755},
		{name: "tmp", typ: tar.TypeSymlink, link: "/etc"},
	})
	c := newSlugCache(filepath.Join(dir, "cache"), dir, nil)

	var wg sync.WaitGroup
	got := make([]string, 6)
	errs := make([]error, 6)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = c.Ensure(context.Background(), src, sum)
		}(i)
	}
	wg.Wait()
	for i := range got {
		must.NoError(t, errs[i])
		must.Eq(t, filepath.Join(dir, "cache", sum), got[i])
	}
	st, err := os.Stat(filepath.Join(got[0], "bin/web"))
	must.NoError(t, err)
	must.Eq(t, os.FileMode(0o755), st.Mode().Perm())
	must.Zero(t, st.Mode()&os.ModeSetuid)
	lst, err := os.Lstat(filepath.Join(got[0], "tmp"))
	must.NoError(t, err)
	must.True(t, lst.IsDir(), must.Sprint("tmp must be a plain directory, not the archive's symlink"))
	left, _ := filepath.Glob(filepath.Join(dir, "cache", ".unpack-*"))
	must.SliceEmpty(t, left)
}

func TestSlugCache_RefusesBadArchives(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newSlugCache(filepath.Join(dir, "cache"), dir, nil)
	good, goodSum := makeSlug(t, dir, []tarEntry{{name: "a", body: "a"}})
	other := sha256.Sum256([]byte("another release"))
	otherSum := hex.EncodeToString(other[:])
	// A file of another release's name whose content is not that release's.
	must.NoError(t, os.Link(good, filepath.Join(dir, otherSum+".tar.gz")))
	notGzip := sha256.Sum256([]byte("not gzip"))
	notGzipSum := hex.EncodeToString(notGzip[:])
	must.NoError(t, os.WriteFile(filepath.Join(dir, notGzipSum+".tar.gz"), []byte("not gzip"), 0o644))
	missing := sha256.Sum256([]byte("missing"))
	missingSum := hex.EncodeToString(missing[:])
	cases := []struct {
		name    string
		entries []tarEntry
		src     string
		sum     string
		wantErr string
	}{
		{name: "checksum mismatch", src: filepath.Join(dir, otherSum+".tar.gz"), sum: otherSum, wantErr: "has sha256 " + goodSum},
		{name: "dot dot", entries: []tarEntry{{name: "../evil", body: "x"}}, wantErr: "path escapes"},
		{name: "through symlink", entries: []tarEntry{
			{name: "d", typ: tar.TypeSymlink, link: dir},
			{name: "d/evil", body: "x"},
		}, wantErr: "path escapes"},
		{name: "hard link out", entries: []tarEntry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, wantErr: "not a file of the slug"},
		{name: "not gzip", src: filepath.Join(dir, notGzipSum+".tar.gz"), sum: notGzipSum, wantErr: "failed to unpack"},
		{name: "missing file", src: filepath.Join(dir, missingSum+".tar.gz"), sum: missingSum, wantErr: "failed to open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, sum := tc.src, tc.sum
			if tc.entries != nil {
				src, sum = makeSlug(t, dir, tc.entries)
			}
			_, err := c.Ensure(context.Background(), src, sum)
			must.ErrorContains(t, err, tc.wantErr)
		})
	}
	_, err := os.Stat(filepath.Join(dir, "evil"))
	must.True(t, os.IsNotExist(err))
}

func TestDriver_SlugIsReadOnlyApp(t *testing.T) {
	t.Parallel()
	h, d := newHarness(t)
	src, sum := makeSlug(t, d.config.SlugStoreDir, []tarEntry{
		{name: "bin/web", body: "#!/bin/sh\necho \"app=$(cat /app/VERSION)\"\necho x > /app/VERSION 2>/dev/null && echo wrote-app\necho t > /app/tmp/t && echo l > /app/log/l && echo wrote-tmp-log\necho y > /tmp/y && cat /app/tmp/y\n", mode: 0o755},
		{name: "VERSION", body: "v42"},
	})
	task := newTask(t, TaskConfig{Command: "/app/bin/web", Slug: src, SlugSHA256: sum})
	start(t, h, task)
	res := wait(t, h, task.ID, 30*time.Second)
	must.Zero(t, res.ExitCode)
	out := waitForStdout(t, task, "y", 10*time.Second)
	must.Eq(t, "app=v42\nwrote-tmp-log\ny\n", out)
}

// makeSlugFromFiles packs host files (name in slug to host path) as executables into
// the slug store dir.
func makeSlugFromFiles(t *testing.T, dir string, files map[string]string) (string, string) {
	t.Helper()
	var entries []tarEntry
	for name, src := range files {
		b, err := os.ReadFile(src)
		must.NoError(t, err)
		entries = append(entries, tarEntry{name: name, body: string(b), mode: 0o755})
	}
	return makeSlug(t, dir, entries)
}

// A task's slug names a file of the slug store directory or an address of the slug
// store, exactly <store><slug_sha256>.tar.gz: every other host path and address is
// refused before anything is opened or requested.
func TestSlugCache_CheckSource(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("ab", 32)
	other := strings.Repeat("cd", 32)
	base, err := url.Parse("https://store.example.com:8443/slugs/")
	must.NoError(t, err)
	withStore := newSlugCache("/var/lib/dynogrid/slugs", "/var/lib/dynogrid/slug-store", &slugStore{base: base})
	noStore := newSlugCache("/var/lib/dynogrid/slugs", "/var/lib/dynogrid/slug-store", nil)
	const store = "/var/lib/dynogrid/slug-store/"
	const remote = "https://store.example.com:8443/slugs/"
	cases := []struct {
		name, src string
		c         *slugCache
		ok        bool
	}{
		{"store file", store + sum + ".tar.gz", withStore, true},
		{"store file, no store URL", store + sum + ".tar.gz", noStore, true},
		{"store address", remote + sum + ".tar.gz", withStore, true},
		{"host file", "/etc/passwd", withStore, false},
		{"store dot dot", store + "../../../etc/passwd", withStore, false},
		{"store dot dot after the name", store + sum + ".tar.gz/../../../../etc/passwd", withStore, false},
		{"unclean store path", "/var/lib/dynogrid/slug-store//" + sum + ".tar.gz", withStore, false},
		{"store file of another sum", store + other + ".tar.gz", withStore, false},
		{"build cache in the store", store + "build-cache/app.tar.gz", withStore, false},
		{"subdirectory of the store", store + "x/" + sum + ".tar.gz", withStore, false},
		{"prefix of the store dir", "/var/lib/dynogrid/slug-store-evil/" + sum + ".tar.gz", withStore, false},
		{"relative path", "slug-store/" + sum + ".tar.gz", withStore, false},
		{"Nomad's API on loopback", "http://127.0.0.1:4646/v1/acl/token/self", withStore, false},
		{"Consul's API on loopback", "http://127.0.0.1:8500/v1/kv/" + sum + ".tar.gz", withStore, false},
		{"loopback, store's path", "https://127.0.0.1:8443/slugs/" + sum + ".tar.gz", withStore, false},
		{"other host", "https://evil.example.com:8443/slugs/" + sum + ".tar.gz", withStore, false},
		{"host prefix confusion", "https://store.example.com.evil:8443/slugs/" + sum + ".tar.gz", withStore, false},
		{"other port", "https://store.example.com:9443/slugs/" + sum + ".tar.gz", withStore, false},
		{"no port", "https://store.example.com/slugs/" + sum + ".tar.gz", withStore, false},
		{"http, not https", "http://store.example.com:8443/slugs/" + sum + ".tar.gz", withStore, false},
		{"userinfo", "https://reader:x@store.example.com:8443/slugs/" + sum + ".tar.gz", withStore, false},
		{"userinfo host confusion", "https://store.example.com:8443@evil.example.com/slugs/" + sum + ".tar.gz", withStore, false},
		{"path prefix confusion", "https://store.example.com:8443/slugs-evil/" + sum + ".tar.gz", withStore, false},
		{"dot dot out of the path", remote + "../v1/" + sum + ".tar.gz", withStore, false},
		{"escaped dot dot", remote + "%2e%2e/v1/" + sum + ".tar.gz", withStore, false},
		{"query", remote + sum + ".tar.gz?redirect=http://127.0.0.1:4646/", withStore, false},
		{"empty query", remote + sum + ".tar.gz?", withStore, false},
		{"fragment", remote + sum + ".tar.gz#x", withStore, false},
		{"store address of another sum", remote + other + ".tar.gz", withStore, false},
		{"store address, no store URL", remote + sum + ".tar.gz", noStore, false},
		{"file URL", "file://" + store + sum + ".tar.gz", withStore, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.checkSource(tc.src, sum)
			if tc.ok {
				must.NoError(t, err)
				return
			}
			must.ErrorContains(t, err, "slug: ")
			must.ErrorContains(t, err, "/var/lib/dynogrid/slug-store/<slug_sha256>.tar.gz (plugin config slug_store_dir)")
			if tc.c.store != nil {
				must.ErrorContains(t, err, remote+"<slug_sha256>.tar.gz (plugin config slug_store_url)")
			}
		})
	}
}

// In the store directory, a slug is a regular file: a symbolic link (out of the store,
// even to a file of the right content), a FIFO or a directory of a slug's name is not
// read.
func TestSlugCache_StoreFileIsRegular(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	src, sum := makeSlug(t, outside, []tarEntry{{name: "Procfile", body: "web: ./web\n"}})
	store := t.TempDir()
	c := newSlugCache(filepath.Join(t.TempDir(), "cache"), store, nil)
	name := filepath.Join(store, sum+".tar.gz")

	must.NoError(t, os.Symlink(src, name))
	_, err := c.Ensure(context.Background(), name, sum)
	must.ErrorContains(t, err, "is a symbolic link")

	must.NoError(t, os.Remove(name))
	must.NoError(t, unix.Mkfifo(name, 0o644))
	_, err = c.Ensure(context.Background(), name, sum) // a FIFO without writer: opening must not block
	must.ErrorContains(t, err, "is not a regular file")

	must.NoError(t, os.Remove(name))
	must.NoError(t, os.Mkdir(name, 0o755))
	_, err = c.Ensure(context.Background(), name, sum)
	must.ErrorContains(t, err, "is not a regular file")

	must.NoError(t, os.Remove(name))
	must.NoError(t, os.Link(src, name))
	_, err = c.Ensure(context.Background(), name, sum)
	must.NoError(t, err)
}

// A slug outside the store is refused before any request: a listener on loopback that
// stands for an agent's API sees none, and the host's cache is not even created.
func TestSlugCache_RefusedSourceIsNotRequested(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(agent.Close)
	store, _, ca := storeServer(t, t.TempDir())
	st, err := (&Config{SlugStoreURL: store.URL + "/slugs/", SlugStoreCAFile: ca}).slugStore()
	must.NoError(t, err)
	cache := filepath.Join(t.TempDir(), "cache")
	c := newSlugCache(cache, t.TempDir(), st)
	sum := strings.Repeat("ab", 32)
	for _, src := range []string{
		agent.URL + "/v1/agent/self",
		agent.URL + "/slugs/" + sum + ".tar.gz",
		"https://" + agent.Listener.Addr().String() + "/slugs/" + sum + ".tar.gz",
		"/etc/passwd",
	} {
		_, err := c.Ensure(context.Background(), src, sum)
		must.ErrorContains(t, err, "plugin config slug_store_dir")
	}
	must.Eq(t, int32(0), hits.Load())
	_, err = os.Stat(cache)
	must.True(t, os.IsNotExist(err))
}
