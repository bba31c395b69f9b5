package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/slug"
)

// withSlugRemote makes d upload slugs when its store is a grid's https:// slug store:
// slugs are packed in this user's cache, then put there. The store's credentials come
// from the environment, never from an app's spec or job.
func (m *meta) withSlugRemote(d *deploy.Deployer) (*deploy.Deployer, error) {
	if !slug.IsRemote(d.SlugStore) {
		return d, nil
	}
	r, err := slug.NewRemote(d.SlugStore, os.Getenv("DYNO_SLUG_STORE_USER"), os.Getenv("DYNO_SLUG_STORE_PASSWORD"),
		os.Getenv("DYNO_SLUG_STORE_CACERT"), "--slug-store")
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("no directory to pack slugs in: %w", err)
	}
	d.SlugStore, d.SlugRemote = filepath.Join(cache, "dynogrid", "slugs"), r
	return d, nil
}
