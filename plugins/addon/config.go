package addon

import "fmt"

// Get returns a setting, or def when it is absent or empty.
func (c Config) Get(key, def string) string {
	if v := c.Settings[key]; v != "" {
		return v
	}
	return def
}

// Require returns a setting, or an error naming it when it is absent or empty.
func (c Config) Require(key string) (string, error) {
	if v := c.Settings[key]; v != "" {
		return v, nil
	}
	return "", fmt.Errorf("setting %q is required", key)
}
