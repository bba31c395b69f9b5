package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// SecretKey is the add-on. Its only setting is "bytes": how many random bytes a key
// has (default 64, from 16 to 512).
type SecretKey struct {
	bytes int
	store *addon.Store
}

// key is what the add-on remembers per request ID.
type key struct {
	App    string `json:"app"`
	Secret string `json:"secret"`
}

// Configure reads the settings and opens the state file.
func (s *SecretKey) Configure(_ context.Context, cfg addon.Config) error {
	n, err := strconv.Atoi(cfg.Get("bytes", "64"))
	if err != nil || n < 16 || n > 512 {
		return fmt.Errorf("setting %q must be a number from 16 to 512, not %q", "bytes", cfg.Settings["bytes"])
	}
	s.bytes = n
	s.store, err = addon.OpenStore(cfg.StateDir, "keys.json")
	return err
}

// Describe says what the add-on offers.
func (s *SecretKey) Describe(context.Context) (addon.Description, error) {
	return addon.Description{
		Name:    "secretkey",
		Version: "1.0.0",
		Summary: "a random SECRET_KEY_BASE for signing cookies",
		Plans:   []addon.Plan{{Name: "standard", Description: "one random key"}},
		EnvVars: []string{"SECRET_KEY_BASE"},
	}, nil
}

// Provision makes the key of a request, or returns the one made before: the key is
// saved under the request ID before it is answered.
func (s *SecretKey) Provision(_ context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
	k, err := addon.Remember(s.store, req.RequestID, func() (key, error) {
		b := make([]byte, s.bytes)
		if _, err := rand.Read(b); err != nil {
			return key{}, err
		}
		return key{App: req.App, Secret: hex.EncodeToString(b)}, nil
	})
	if err != nil {
		return addon.Resource{}, fmt.Errorf("failed to keep the key: %w", err)
	}
	if k.App != req.App {
		return addon.Resource{}, fmt.Errorf("request %s belongs to app %s", req.RequestID, k.App)
	}
	return addon.Resource{ID: "secretkey-" + req.RequestID, Env: map[string]string{"SECRET_KEY_BASE": k.Secret}}, nil
}

// Deprovision forgets the key. A key already forgotten is success.
func (s *SecretKey) Deprovision(_ context.Context, req addon.DeprovisionRequest) error {
	id, ok := strings.CutPrefix(req.ResourceID, "secretkey-")
	if !ok {
		return fmt.Errorf("resource %q was not made by this add-on", req.ResourceID)
	}
	return s.store.Update(func(records map[string]json.RawMessage) error {
		var k key
		if raw, ok := records[id]; ok {
			if err := json.Unmarshal(raw, &k); err != nil {
				return err
			}
			if k.App != req.App {
				return fmt.Errorf("resource %s belongs to app %s", req.ResourceID, k.App)
			}
		}
		delete(records, id)
		return nil
	})
}
