package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	nomadapi "github.com/hashicorp/nomad/api"
)

// EnvPath is the Nomad Variable path of an environment: content-addressed and under the
// job's own prefix, which Nomad's workload identity lets the app's tasks read.
func EnvPath(app string, env map[string]string) string {
	if len(env) == 0 {
		return ""
	}
	h := sha256.New()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, env[k])
	}
	return fmt.Sprintf("nomad/jobs/%s/env/%s", app, hex.EncodeToString(h.Sum(nil))[:16])
}

// WriteEnv stores env in its Nomad Variable (once: the path names the content) and
// returns the path. An env over a config limit is refused before anything is written.
func WriteEnv(ctx context.Context, nomad *nomadapi.Client, app string, env map[string]string) (string, error) {
	if err := checkEnv(app, env); err != nil {
		return "", err
	}
	path := EnvPath(app, env)
	if path == "" {
		return "", nil
	}
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	if _, _, err := nomad.Variables().Read(path, q); err == nil {
		return path, nil
	} else if !errors.Is(err, nomadapi.ErrVariablePathNotFound) {
		return "", fmt.Errorf("failed to read config variable %s: %w", path, err)
	}
	v := &nomadapi.Variable{Path: path, Items: nomadapi.VariableItems(env)}
	if _, _, err := nomad.Variables().Create(v, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return "", fmt.Errorf("failed to store config variable %s: %w", path, err)
	}
	return path, nil
}

// ReadEnv returns the environment stored at path ("" means none).
func ReadEnv(ctx context.Context, nomad *nomadapi.Client, path string) (map[string]string, error) {
	env := map[string]string{}
	if path == "" {
		return env, nil
	}
	v, _, err := nomad.Variables().Read(path, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to read config variable %s: %w", path, err)
	}
	for k, val := range v.Items {
		env[k] = val
	}
	return env, nil
}
