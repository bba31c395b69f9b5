//go:build tools

// Package upstream pins the libraries that Dynogrid's packages build on while they are written.
package upstream

import (
	_ "github.com/hashicorp/consul/api"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/hashicorp/hcl/v2"
	_ "github.com/hashicorp/nomad/api"
	_ "github.com/hashicorp/nomad/drivers/shared/executor"
	_ "github.com/hashicorp/nomad/plugins"
	_ "github.com/hashicorp/nomad/plugins/drivers"
	_ "github.com/hashicorp/nomad/plugins/drivers/testutils"
	_ "github.com/hashicorp/nomad/plugins/shared/hclspec"
	_ "github.com/shoenig/test/must"
)
