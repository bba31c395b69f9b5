package driver

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// slugFetchTimeout bounds the download of one slug.
const slugFetchTimeout = 10 * time.Minute

// slugCache unpacks each slug once per host into dir/<sha256>, atomically: a directory
// of that name is always complete. Dynos of one release share it, read-only.
type slugCache struct {
	dir    string
	client *http.Client

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func newSlugCache(dir string) *slugCache {
	return &slugCache{dir: dir, client: &http.Client{Timeout: slugFetchTimeout}, locks: map[string]*sync.Mutex{}}
}

func (c *slugCache) lock(sum string) func() {
	c.mu.Lock()
	l, ok := c.locks[sum]
	if !ok {
		l = &sync.Mutex{}
		c.locks[sum] = l
	}
	c.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Ensure returns the directory holding the unpacked slug whose archive has sha256 sum,
// fetching and unpacking src first if this host does not have it yet.
func (c *slugCache) Ensure(ctx context.Context, src, sum string) (string, error) {
	final := filepath.Join(c.dir, sum)
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		return final, nil
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create slug_dir: %w", err)
	}
	// One unpacker per slug in this process, and across processes (several Nomad
	// clients on one host share the cache) through a lock file.
	defer c.lock(sum)()
	lf, err := os.OpenFile(filepath.Join(c.dir, "."+sum+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("failed to lock slug %s: %w", sum, err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("failed to lock slug %s: %w", sum, err)
	}
	defer unix.Flock(int(lf.Fd()), unix.LOCK_UN) //nolint:errcheck
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		return final, nil
	}

	archive, err := os.CreateTemp(c.dir, ".incoming-"+sum+"-*")
	if err != nil {
		return "", fmt.Errorf("failed to fetch slug: %w", err)
	}
	defer os.Remove(archive.Name())
	defer archive.Close()
	got, err := c.fetch(ctx, src, archive)
	if err != nil {
		return "", err
	}
	if got != sum {
		return "", fmt.Errorf("slug_sha256: archive %s has sha256 %s, the task expects %s; refusing to start", src, got, sum)
	}
	if _, err := archive.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("failed to read slug: %w", err)
	}
	tmp, err := os.MkdirTemp(c.dir, ".unpack-"+sum+"-")
	if err != nil {
		return "", fmt.Errorf("failed to unpack slug: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := unpackSlug(archive, tmp); err != nil {
		return "", fmt.Errorf("failed to unpack slug %s: %w", src, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("failed to unpack slug: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if st, serr := os.Stat(final); serr == nil && st.IsDir() {
			return final, nil
		}
		return "", fmt.Errorf("failed to install slug: %w", err)
	}
	return final, nil
}

// fetch copies the archive at src (a host path or an http(s) URL) into w and returns its
// sha256.
func (c *slugCache) fetch(ctx context.Context, src string, w io.Writer) (string, error) {
	h := sha256.New()
	var r io.Reader
	if filepath.IsAbs(src) {
		f, err := os.Open(src)
		if err != nil {
			return "", fmt.Errorf("slug: failed to open %s: %w", src, err)
		}
		defer f.Close()
		r = f
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return "", fmt.Errorf("slug: bad URL %s: %w", src, err)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return "", fmt.Errorf("slug: failed to fetch %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("slug: fetching %s answered %s", src, resp.Status)
		}
		r = resp.Body
	}
	if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
		return "", fmt.Errorf("slug: failed to read %s: %w", src, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// unpackSlug extracts a .tar.gz into dir. It refuses entries that would land outside dir
// (absolute names, "..", or a path through a symlink of the archive), keeps only
// directories, regular files, symlinks and hard links, drops setuid/setgid bits and
// ownership, and makes sure ./tmp and ./log are plain directories (the dyno's private
// writable mounts go there).
func unpackSlug(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip archive: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("corrupt tar archive: %w", err)
		}
		name, err := slugEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		target := filepath.Join(dir, name)
		if err := checkNoSymlinkParents(dir, name); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			mode := os.FileMode(0o644)
			if hdr.Mode&0o111 != 0 {
				mode = 0o755
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.Remove(target)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, mode)
			if err != nil {
				return err
			}
			_, cerr := io.Copy(f, tr)
			if err := errors.Join(cerr, f.Close()); err != nil {
				return fmt.Errorf("failed to write %s: %w", name, err)
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := slugEntryName(hdr.Linkname)
			if err != nil || src == "" {
				return fmt.Errorf("archive entry %q: hard link to %q leaves the slug", hdr.Name, hdr.Linkname)
			}
			if err := checkNoSymlinkParents(dir, src); err != nil {
				return err
			}
			if st, err := os.Lstat(filepath.Join(dir, src)); err != nil || !st.Mode().IsRegular() {
				return fmt.Errorf("archive entry %q: hard link to %q, which is not a file of the slug", hdr.Name, hdr.Linkname)
			}
			_ = os.Remove(target)
			if err := os.Link(filepath.Join(dir, src), target); err != nil {
				return err
			}
		default:
			// Devices, fifos and the like have no place in an app.
		}
	}
	for _, d := range []string{"tmp", "log"} {
		p := filepath.Join(dir, d)
		if st, err := os.Lstat(p); err == nil && !st.IsDir() {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// slugEntryName cleans an archive name into a path relative to the slug's root, or
// refuses it when it would leave the root.
func slugEntryName(n string) (string, error) {
	clean := filepath.Clean("/" + n)
	if strings.Contains(n, "\x00") {
		return "", fmt.Errorf("archive entry %q: NUL in name", n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("archive entry %q leaves the slug", n)
		}
	}
	if clean == "/" {
		return "", nil
	}
	return clean[1:], nil
}

// checkNoSymlinkParents fails when a parent directory of name inside dir is a symlink, so
// an archive cannot write through a link it planted.
func checkNoSymlinkParents(dir, name string) error {
	parts := strings.Split(name, "/")
	p := dir
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("archive entry %q: goes through the symlink %s", name, strings.TrimPrefix(p, dir+"/"))
		}
	}
	return nil
}
