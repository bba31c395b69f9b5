package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/dynogrid/internal/slug"
)

// slugFetchTimeout bounds the download of one slug.
const slugFetchTimeout = 10 * time.Minute

// slugCache unpacks each slug once per host into dir/<sha256>, atomically: a directory
// of that name is always complete. Dynos of one release share it, read-only.
type slugCache struct {
	dir string
	// storeDir is the grid's slug store on this host (slug_store_dir), store its
	// https:// slug store (slug_store_url) or nil: the only places a slug comes from.
	storeDir string
	store    *slugStore

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func newSlugCache(dir, storeDir string, store *slugStore) *slugCache {
	return &slugCache{dir: dir, storeDir: storeDir, store: store, locks: map[string]*sync.Mutex{}}
}

// checkSource tells whether src may be the archive of the slug whose sha256 is sum.
// Slugs are named by their content in the grid's slug store, so src must be exactly
// <slug_store_dir>/<sum>.tar.gz or <slug_store_url><sum>.tar.gz: a task's config, which
// an app's deploy token writes, names no other file of the host (not even another one
// of the store, such as an app's build cache) and no other address.
func (c *slugCache) checkSource(src, sum string) error {
	if !sha256RE.MatchString(sum) {
		return fmt.Errorf("slug_sha256: %q must be the 64 lowercase hex digits of the slug's sha256", sum)
	}
	name := sum + ".tar.gz"
	if src == filepath.Join(c.storeDir, name) || (c.store != nil && src == c.store.base.String()+name) {
		return nil
	}
	where := "; no slug_store_url is configured"
	if c.store != nil {
		where = ", or " + c.store.base.String() + "<slug_sha256>.tar.gz (plugin config slug_store_url)"
	}
	return fmt.Errorf("slug: %q is not a slug of the grid's slug store: a slug must be %s (plugin config slug_store_dir)%s",
		src, filepath.Join(c.storeDir, "<slug_sha256>.tar.gz"), where)
}

// maxArchive bounds a slug's archive: slug.MaxSize of files and room for their headers.
const maxArchive = slug.MaxSize + 64<<20

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
	if err := c.checkSource(src, sum); err != nil {
		return "", err
	}
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
	if err := slug.Unpack(archive, tmp); err != nil {
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

// fetch copies the archive at src (checked by checkSource: a file of the store directory
// or an address of the store) into w and returns its sha256.
func (c *slugCache) fetch(ctx context.Context, src string, w io.Writer) (string, error) {
	h := sha256.New()
	var r io.Reader
	if filepath.IsAbs(src) {
		f, err := openStoreFile(src)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return "", fmt.Errorf("slug: bad URL %s: %w", src, err)
		}
		c.store.authorize(req)
		resp, err := c.store.client.Do(req)
		if err != nil {
			return "", fmt.Errorf("slug: failed to fetch %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("slug: fetching %s answered %s", src, resp.Status)
		}
		r = resp.Body
	}
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, maxArchive+1))
	if err != nil {
		return "", fmt.Errorf("slug: failed to read %s: %w", src, err)
	}
	if n > maxArchive {
		return "", fmt.Errorf("slug: %s is larger than %d MB; refusing it", src, maxArchive>>20)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openStoreFile opens the slug store's file path for reading: a regular file, not a
// symbolic link (which could lead out of the store) nor a FIFO or device (which could
// block or be read from).
func openStoreFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("slug: %s is a symbolic link; a slug must be a regular file of the slug store", path)
	}
	if err != nil {
		return nil, fmt.Errorf("slug: failed to open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("slug: failed to open %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("slug: %s is not a regular file; a slug must be a regular file of the slug store", path)
	}
	return f, nil
}
