package addonhost

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// List returns the names of the add-ons in the plugin directory (executable regular
// files named dyno-addon-<name> with a valid name) and of the in-process add-ons, sorted.
func (h *Host) List() ([]string, error) {
	var names []string
	for name := range h.opts.InProcess {
		names = append(names, name)
	}
	if h.opts.PluginDir == "" {
		sort.Strings(names)
		return names, nil
	}
	entries, err := os.ReadDir(h.opts.PluginDir)
	if err != nil {
		return nil, fmt.Errorf("failed to read the add-on plugin directory: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), addon.BinaryPrefix)
		if !ok || !addon.ValidAddonName(name) {
			continue
		}
		if _, inProcess := h.opts.InProcess[name]; inProcess {
			continue
		}
		if _, err := h.path(name); err == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// path returns the binary of add-on name, checking that it is an executable file.
func (h *Host) path(name string) (string, error) {
	if !addon.ValidAddonName(name) {
		return "", &Error{Addon: name, Op: "find", Kind: KindInvalidRequest,
			Err: errors.New("not a valid add-on name (lowercase letters, digits and dashes, starting with a letter)")}
	}
	if h.opts.PluginDir == "" {
		return "", &Error{Addon: name, Op: "find", Kind: KindNotFound,
			Err: errors.New("no in-process add-on of that name, and no plugin directory")}
	}
	p := filepath.Join(h.opts.PluginDir, addon.BinaryPrefix+name)
	fi, err := os.Stat(p)
	if err != nil {
		return "", &Error{Addon: name, Op: "find", Kind: KindNotFound,
			Err: fmt.Errorf("no plugin %s in %s", addon.BinaryPrefix+name, h.opts.PluginDir)}
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", &Error{Addon: name, Op: "find", Kind: KindNotFound,
			Err: fmt.Errorf("%s is not an executable file", p)}
	}
	return p, nil
}
