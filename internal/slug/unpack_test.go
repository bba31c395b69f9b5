package slug

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one member of a hand-made archive.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// archive is a .tar.gz of entries, which may be anything a hostile archive holds.
func archive(t *testing.T, entries ...entry) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

// tree lists what dir holds: "name mode" for files and directories, "name -> target"
// for symlinks.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+target)
		case st.IsDir():
			out = append(out, rel+"/ "+st.Mode().Perm().String())
		default:
			out = append(out, rel+" "+st.Mode().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUnpackRoundTripsPack(t *testing.T) {
	t.Parallel()
	app := t.TempDir()
	mustWrite(t, filepath.Join(app, "config.ru"), "run App\n", 0o644)
	mustWrite(t, filepath.Join(app, "bin", "start"), "#!/bin/sh\n", 0o700)
	mustWrite(t, filepath.Join(app, "tmp", "cache.db"), "private", 0o600)
	if err := os.Symlink("config.ru", filepath.Join(app, "link.ru")); err != nil {
		t.Fatal(err)
	}
	s, err := Pack(app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	if err := Unpack(f, dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"bin/ -rwxr-xr-x", "bin/start -rwxr-xr-x", "config.ru -rw-r--r--", "link.ru -> config.ru", "log/ -rwxr-xr-x", "tmp/ -rwxr-xr-x"}
	if got := tree(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("unpacked slug holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.ru"))
	if err != nil || string(b) != "run App\n" {
		t.Fatalf("config.ru holds %q (%v), want the packed contents", b, err)
	}
}

// Unpack keeps what an app needs and drops what gives privileges or reaches the host.
func TestUnpackNormalisesEntries(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "secret"), "host file", 0o644)
	dir := t.TempDir()
	err := Unpack(archive(t,
		entry{name: "bin/web", body: "#!/bin/sh\n", mode: 0o4755},
		entry{name: "bin/sgid", body: "x", mode: 0o2644},
		entry{name: "/abs/file", body: "absolute names stay inside"},
		entry{name: "a/../b", body: "cleaned inside the slug"},
		entry{name: "out", typ: tar.TypeSymlink, link: filepath.Join(outside, "secret")},
		// A file over a symlink replaces the link; it never writes through it.
		entry{name: "over", typ: tar.TypeSymlink, link: filepath.Join(outside, "secret")},
		entry{name: "over", body: "replaced the link"},
		entry{name: "copy", typ: tar.TypeLink, link: "bin/web"},
		// A symlink that stays inside the slug may be written through.
		entry{name: "vendor/", typ: tar.TypeDir},
		entry{name: "lib", typ: tar.TypeSymlink, link: "vendor"},
		entry{name: "lib/x.rb", body: "inside"},
		entry{name: "null", typ: tar.TypeChar, mode: 0o666},
		entry{name: "disk", typ: tar.TypeBlock, mode: 0o666},
		entry{name: "pipe", typ: tar.TypeFifo, mode: 0o666},
		entry{name: "tmp", typ: tar.TypeSymlink, link: "/etc"},
		entry{name: "log", body: "a file where the log directory goes"},
	), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"abs/ -rwxr-xr-x", "abs/file -rw-r--r--",
		"b -rw-r--r--",
		"bin/ -rwxr-xr-x", "bin/sgid -rw-r--r--", "bin/web -rwxr-xr-x",
		"copy -rwxr-xr-x",
		"lib -> vendor",
		"log/ -rwxr-xr-x",
		"out -> " + filepath.Join(outside, "secret"),
		"over -rw-r--r--",
		"tmp/ -rwxr-xr-x",
		"vendor/ -rwxr-xr-x", "vendor/x.rb -rw-r--r--",
	}
	if got := tree(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("unpacked slug holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "host file" {
		t.Fatalf("the host file a symlink pointed at now holds %q", b)
	}
	web, _ := os.Stat(filepath.Join(dir, "bin/web"))
	copied, _ := os.Stat(filepath.Join(dir, "copy"))
	if !os.SameFile(web, copied) {
		t.Fatal("the hard link is not the same file as its target")
	}
}

// An archive that reaches out of the slug fails whole, and nothing outside changes.
func TestUnpackRefusesEscapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		entries func(outside string) []entry
		wantErr string
	}{
		{"dot dot", func(string) []entry {
			return []entry{{name: "../evil", body: "x"}}
		}, "escapes"},
		{"dot dot inside a path", func(string) []entry {
			return []entry{{name: "a/../../evil", body: "x"}}
		}, "escapes"},
		{"directory out", func(string) []entry {
			return []entry{{name: "../evil/", typ: tar.TypeDir}}
		}, "escapes"},
		{"file through an absolute symlink", func(outside string) []entry {
			return []entry{{name: "d", typ: tar.TypeSymlink, link: outside}, {name: "d/evil", body: "x"}}
		}, "escapes"},
		{"file through a relative symlink", func(string) []entry {
			return []entry{{name: "d", typ: tar.TypeSymlink, link: "../"}, {name: "d/evil", body: "x"}}
		}, "escapes"},
		{"directory through a symlink", func(outside string) []entry {
			return []entry{{name: "d", typ: tar.TypeSymlink, link: outside}, {name: "d/evil/", typ: tar.TypeDir}}
		}, "escapes"},
		{"symlink through a symlink", func(outside string) []entry {
			return []entry{{name: "d", typ: tar.TypeSymlink, link: outside}, {name: "d/evil", typ: tar.TypeSymlink, link: "/"}}
		}, "escapes"},
		{"hard link through a symlink", func(outside string) []entry {
			return []entry{{name: "f", body: "x"}, {name: "d", typ: tar.TypeSymlink, link: outside}, {name: "d/evil", typ: tar.TypeLink, link: "f"}}
		}, "escapes"},
		{"hard link to a host file", func(outside string) []entry {
			return []entry{{name: "h", typ: tar.TypeLink, link: filepath.Join(outside, "evil")}}
		}, "not a file of the slug"},
		{"hard link out by dot dot", func(string) []entry {
			return []entry{{name: "h", typ: tar.TypeLink, link: "../evil"}}
		}, "not a file of the slug"},
		{"hard link to a symlink out", func(outside string) []entry {
			return []entry{{name: "l", typ: tar.TypeSymlink, link: filepath.Join(outside, "evil")}, {name: "h", typ: tar.TypeLink, link: "l"}}
		}, "not a file of the slug"},
		{"hard link to a directory", func(string) []entry {
			return []entry{{name: "d/", typ: tar.TypeDir}, {name: "h", typ: tar.TypeLink, link: "d"}}
		}, "not a file of the slug"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// dir is parent/slug, so that ".." from the slug is parent, which the test owns.
			parent := t.TempDir()
			dir := filepath.Join(parent, "slug")
			outside := filepath.Join(parent, "outside")
			for _, d := range []string{dir, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			mustWrite(t, filepath.Join(outside, "evil"), "host file", 0o644)
			err := Unpack(archive(t, tc.entries(outside)...), dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Unpack = %v, want an error containing %q", err, tc.wantErr)
			}
			if got := tree(t, outside); strings.Join(got, " ") != "evil -rw-r--r--" {
				t.Errorf("outside the slug now holds %v", got)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "evil")); string(b) != "host file" {
				t.Errorf("the host file now holds %q", b)
			}
			if _, err := os.Lstat(filepath.Join(parent, "evil")); !os.IsNotExist(err) {
				t.Errorf("the archive wrote beside the slug: %v", err)
			}
		})
	}
}

func TestUnpackRefusesNonArchives(t *testing.T) {
	t.Parallel()
	if err := Unpack(strings.NewReader("not gzip"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a gzip archive") {
		t.Fatalf("Unpack of text = %v, want \"not a gzip archive\"", err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, _ = gz.Write([]byte("gzip but not tar, long enough to be read as a header block"))
	_ = gz.Close()
	if err := Unpack(&buf, t.TempDir()); err == nil || !strings.Contains(err.Error(), "corrupt tar archive") {
		t.Fatalf("Unpack of gzipped text = %v, want \"corrupt tar archive\"", err)
	}
	if err := Unpack(archive(t), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Unpack into a missing directory succeeded")
	}
}
