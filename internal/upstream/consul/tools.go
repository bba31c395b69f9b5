//go:build tools

// Package consul pins the MPL-2.0 release of Consul that Dynogrid builds its agent from.
package consul

import _ "github.com/hashicorp/consul"
