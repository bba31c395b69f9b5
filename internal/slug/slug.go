// Package slug packs an app's code into a slug: a content-addressed, reproducible
// .tar.gz (the same tree always gives the same bytes and so the same sha256), stored
// where every host of the grid can fetch it.
package slug

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Slug is a packed release of an app's code.
type Slug struct {
	// SHA256 is the hex sha256 of the archive.
	SHA256 string `json:"sha256"`
	// Path is where the archive is stored.
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// MaxSize bounds a slug, as Heroku's did.
const MaxSize = 500 << 20

// skipDirs are never packed; tmp and log are packed empty, since each dyno gets its own.
var skipDirs = map[string]bool{".git": true, ".hg": true, ".svn": true}
var emptyDirs = map[string]bool{"tmp": true, "log": true}

// Pack archives dir into the store directory as <sha256>.tar.gz and returns the slug.
// Packing the same tree twice gives the same slug.
func Pack(dir, store string) (*Slug, error) {
	if err := os.MkdirAll(store, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create slug store: %w", err)
	}
	tmp, err := os.CreateTemp(store, ".packing-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create slug: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	h := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(tmp, h)}
	if err := write(dir, counter); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("failed to write slug: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	final := filepath.Join(store, sum+".tar.gz")
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, fmt.Errorf("failed to store slug: %w", err)
	}
	return &Slug{SHA256: sum, Path: final, Size: counter.n}, nil
}

func write(dir string, w io.Writer) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	gz.ModTime = time.Time{}
	tw := tar.NewWriter(gz)
	var paths []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return nil
		}
		top := strings.SplitN(filepath.ToSlash(rel), "/", 2)
		if d.IsDir() && skipDirs[d.Name()] {
			return filepath.SkipDir
		}
		if len(top) == 2 && emptyDirs[top[0]] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to read app directory: %w", err)
	}
	sort.Strings(paths)
	var total int64
	for _, rel := range paths {
		n, err := addEntry(tw, dir, rel)
		if err != nil {
			return err
		}
		total += n
		if total > MaxSize {
			return fmt.Errorf("app directory %s holds more than %d MB; slugs are limited to that", dir, MaxSize>>20)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addEntry(tw *tar.Writer, dir, rel string) (int64, error) {
	path := filepath.Join(dir, rel)
	st, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	// Modes are normalised: what matters is only whether a file is executable.
	switch {
	case st.Mode().IsDir():
		hdr.Typeflag, hdr.Mode, hdr.Name = tar.TypeDir, 0o755, hdr.Name+"/"
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return 0, err
		}
		hdr.Typeflag, hdr.Mode, hdr.Linkname = tar.TypeSymlink, 0o777, target
	case st.Mode().IsRegular():
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, st.Size()
		if st.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
	default:
		return 0, nil // sockets, fifos and devices are not code
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("failed to pack %s: %w", rel, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(tw, f)
	if err != nil {
		return n, fmt.Errorf("failed to pack %s: %w", rel, err)
	}
	if n != st.Size() {
		return n, errors.New("file changed while packing: " + rel)
	}
	return n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
