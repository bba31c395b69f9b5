package slug

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func TestPackIsReproducibleAndSkipsPrivateDirs(t *testing.T) {
	t.Parallel()
	app := t.TempDir()
	mustWrite(t, filepath.Join(app, "config.ru"), "run App\n", 0o644)
	mustWrite(t, filepath.Join(app, "bin", "start"), "#!/bin/sh\n", 0o700)
	mustWrite(t, filepath.Join(app, "tmp", "cache.db"), "private", 0o600)
	mustWrite(t, filepath.Join(app, "log", "app.log"), "private", 0o600)
	mustWrite(t, filepath.Join(app, ".git", "HEAD"), "ref", 0o644)
	if err := os.Symlink("config.ru", filepath.Join(app, "link.ru")); err != nil {
		t.Fatal(err)
	}

	store := t.TempDir()
	a, err := Pack(app, store)
	if err != nil {
		t.Fatal(err)
	}
	// Touch every file: times must not change the slug.
	later := time.Now().Add(time.Hour)
	_ = os.Chtimes(filepath.Join(app, "config.ru"), later, later)
	b, err := Pack(app, store)
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != b.SHA256 || a.Path != b.Path {
		t.Fatalf("packing the same tree twice gave %s and %s", a.SHA256, b.SHA256)
	}
	if filepath.Base(a.Path) != a.SHA256+".tar.gz" {
		t.Errorf("slug stored as %s, want <sha256>.tar.gz", a.Path)
	}

	got := entries(t, a.Path)
	want := []string{"bin/", "bin/start 755", "config.ru 644", "link.ru -> config.ru", "log/", "tmp/"}
	if len(got) != len(want) {
		t.Fatalf("slug holds %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slug holds %v, want %v", got, want)
		}
	}

	mustWrite(t, filepath.Join(app, "config.ru"), "run Other\n", 0o644)
	c, err := Pack(app, store)
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA256 == a.SHA256 {
		t.Error("a changed file gave the same slug")
	}
}

func TestPackMissingDir(t *testing.T) {
	t.Parallel()
	if _, err := Pack(filepath.Join(t.TempDir(), "nope"), t.TempDir()); err == nil {
		t.Fatal("packing a missing directory succeeded")
	}
}

func entries(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			out = append(out, h.Name)
		case tar.TypeSymlink:
			out = append(out, h.Name+" -> "+h.Linkname)
		default:
			out = append(out, h.Name+" "+map[int64]string{0o644: "644", 0o755: "755"}[h.Mode])
		}
	}
	sort.Strings(out)
	return out
}

func mustWrite(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}
