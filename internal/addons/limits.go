package addons

import (
	"context"
	"fmt"

	"github.com/dynogrid/dynogrid/internal/appspec"
	nomadapi "github.com/hashicorp/nomad/api"
)

// checkRoom says why app cannot take one more attachment, before anything is provisioned.
func (m *Manager) checkRoom(ctx context.Context, app string) error {
	metas, _, err := m.nomad().Variables().PrefixList(fmt.Sprintf("nomad/jobs/%s/addons/", app), (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("failed to list the add-ons of %s: %w", app, err)
	}
	if len(metas) >= appspec.MaxAddons {
		return fmt.Errorf("%s has %d add-ons, the limit; remove one with `dyno addons:destroy NAME` before attaching another", app, len(metas))
	}
	return nil
}

// checkEnv says why the app's environment cannot take an add-on's variables.
func checkEnv(cur, add map[string]string) error {
	env := make(map[string]string, len(cur)+len(add))
	for k, v := range cur {
		env[k] = v
	}
	for k, v := range add {
		env[k] = v
	}
	return appspec.ValidateEnv(env)
}
