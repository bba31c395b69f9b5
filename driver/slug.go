package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	dir    string
	client *http.Client
	store  *slugStore // the grid's slug store, or nil

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func newSlugCache(dir string, store *slugStore) *slugCache {
	return &slugCache{dir: dir, client: &http.Client{Timeout: slugFetchTimeout}, store: store, locks: map[string]*sync.Mutex{}}
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
		client := c.client
		if c.store.covers(req.URL) {
			client = c.store.client
			c.store.authorize(req)
		}
		resp, err := client.Do(req)
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
