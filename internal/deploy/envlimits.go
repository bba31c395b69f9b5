package deploy

import (
	"fmt"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// checkEnv holds the environment of a release, however it was assembled (spec, config:set,
// add-ons), to the same config limits as the spec.
func checkEnv(app string, env map[string]string) error {
	if err := appspec.ValidateEnv(env); err != nil {
		return fmt.Errorf("%s cannot be released with these config vars, so nothing was changed: %w", app, err)
	}
	return nil
}
