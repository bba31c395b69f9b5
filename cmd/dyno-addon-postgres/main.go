// Command dyno-addon-postgres is the built-in PostgreSQL add-on plugin. The dyno CLI
// starts it; run by hand, it says so and exits.
package main

import (
	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/postgres"
)

func main() {
	addon.Serve(postgres.New(addon.NewLogger()))
}
