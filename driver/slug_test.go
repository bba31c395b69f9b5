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
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoenig/test/must"
)

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// makeSlug writes a .tar.gz of entries into dir and returns its path and sha256.
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
	p := filepath.Join(dir, hex.EncodeToString(sum[:8])+".tar.gz")
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
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	c := newSlugCache(filepath.Join(dir, "cache"), nil)

	var wg sync.WaitGroup
	got := make([]string, 6)
	errs := make([]error, 6)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := src
			if i%2 == 1 {
				s = srv.URL + "/" + filepath.Base(src)
			}
			got[i], errs[i] = c.Ensure(context.Background(), s, sum)
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
	c := newSlugCache(filepath.Join(dir, "cache"), nil)
	good, _ := makeSlug(t, dir, []tarEntry{{name: "a", body: "a"}})
	other := sha256.Sum256([]byte("another release"))
	otherSum := hex.EncodeToString(other[:])
	cases := []struct {
		name    string
		entries []tarEntry
		src     string
		sum     string
		wantErr string
	}{
		{name: "checksum mismatch", src: good, sum: otherSum, wantErr: "refusing to start"},
		{name: "dot dot", entries: []tarEntry{{name: "../evil", body: "x"}}, wantErr: "path escapes"},
		{name: "through symlink", entries: []tarEntry{
			{name: "d", typ: tar.TypeSymlink, link: dir},
			{name: "d/evil", body: "x"},
		}, wantErr: "path escapes"},
		{name: "hard link out", entries: []tarEntry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, wantErr: "not a file of the slug"},
		{name: "not gzip", src: "/etc/hostname", wantErr: "sha256"},
		{name: "missing file", src: filepath.Join(dir, "nope.tar.gz"), wantErr: "failed to open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, sum := tc.src, tc.sum
			if tc.entries != nil {
				src, sum = makeSlug(t, t.TempDir(), tc.entries)
			}
			if sum == "" {
				sum = otherSum
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
	h, _ := newHarness(t)
	src, sum := makeSlug(t, t.TempDir(), []tarEntry{
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

// makeSlugFromFiles packs host files (name in slug to host path) as executables.
func makeSlugFromFiles(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	var entries []tarEntry
	for name, src := range files {
		b, err := os.ReadFile(src)
		must.NoError(t, err)
		entries = append(entries, tarEntry{name: name, body: string(b), mode: 0o755})
	}
	return makeSlug(t, t.TempDir(), entries)
}
