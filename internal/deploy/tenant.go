package deploy

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// ensureTenant makes sure app is a tenant of the grid before anything of it is written:
// an operator's management token makes it one (its namespace and policies); any other
// token, such as the app's deploy token, needs it to be one already.
func (d *Deployer) ensureTenant(ctx context.Context, app string) error {
	self, _, err := d.Nomad.ACLTokens().Self((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err == nil && self.Type == "management" {
		return tenancy.EnsureApp(ctx, d.Nomad, app)
	}
	_, _, err = d.Nomad.Namespaces().Info(tenancy.Namespace(app), (&nomadapi.QueryOptions{}).WithContext(ctx))
	switch {
	case err == nil:
		return nil
	case apierr.IsStatus(err, http.StatusNotFound):
		return fmt.Errorf("%w: %s is not an app of this grid yet; an operator makes it one with `dyno apps:token --app %s`, or deploys it once", ErrNoApp, app, app)
	default:
		return fmt.Errorf("failed to read app %s: %w", app, err)
	}
}
