package driver

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dynogrid/dynogrid/internal/slug"
)

// maxSecretFile bounds the slug store's password file.
const maxSecretFile = 64 << 10

// slugStore is the grid's slug store as the driver reaches it: its base address, its
// reader's credentials and the client that trusts its CA.
type slugStore struct {
	base     *url.URL
	username string
	password string
	client   *http.Client
}

// slugStore reads the plugin's slug_store_* settings; nil when no store is configured.
func (c *Config) slugStore() (*slugStore, error) {
	if c.SlugStoreURL == "" {
		if c.SlugStoreUsername != "" || c.SlugStorePasswordFile != "" || c.SlugStoreCAFile != "" {
			return nil, errors.New("slug_store_url: must be set with slug_store_username, slug_store_password_file or slug_store_ca_file")
		}
		return nil, nil
	}
	base, err := slug.StoreURL(c.SlugStoreURL)
	if err != nil {
		return nil, fmt.Errorf("slug_store_url: %w", err)
	}
	s := &slugStore{base: base, username: c.SlugStoreUsername}
	if (c.SlugStoreUsername == "") != (c.SlugStorePasswordFile == "") {
		return nil, errors.New("slug_store_username and slug_store_password_file: set both or neither")
	}
	if c.SlugStorePasswordFile != "" {
		b, err := slug.ReadSmallFile(c.SlugStorePasswordFile, maxSecretFile)
		if err != nil {
			return nil, fmt.Errorf("slug_store_password_file: %w", err)
		}
		s.password = strings.TrimRight(string(b), "\r\n")
		if s.password == "" {
			return nil, fmt.Errorf("slug_store_password_file: %s is empty", c.SlugStorePasswordFile)
		}
	}
	tlsConfig, err := slug.StoreTLS(c.SlugStoreCAFile)
	if err != nil {
		return nil, fmt.Errorf("slug_store_ca_file: %w", err)
	}
	s.client = &http.Client{
		Timeout:   slugFetchTimeout,
		Transport: &http.Transport{TLSClientConfig: tlsConfig, Proxy: nil},
		// A redirect would lead the credentials elsewhere: the store answers or fails.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// authorize adds the store's credentials to a request for one of its slugs.
func (s *slugStore) authorize(req *http.Request) {
	if s.username != "" {
		req.SetBasicAuth(s.username, s.password)
	}
}
