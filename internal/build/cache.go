package build

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// cachePath is where app's build cache is kept: beside the slugs, in a directory only
// the slug store's owner reads (slugs themselves are readable by every host; a cache
// may hold what a build fetched with the app's credentials).
func cachePath(store, app string) string {
	return filepath.Join(store, "build-cache", app+".tar.gz")
}

// storeCache replaces the app's build cache with r, atomically.
func storeCache(r io.Reader, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("failed to keep the build cache: %w", err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("failed to keep the build cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cache-*")
	if err != nil {
		return fmt.Errorf("failed to keep the build cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, io.LimitReader(r, MaxCacheBytes)); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("failed to keep the build cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to keep the build cache: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
