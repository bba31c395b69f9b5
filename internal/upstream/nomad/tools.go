//go:build tools

// Package nomad pins the MPL-2.0 release of Nomad that Dynogrid builds its agent from.
package nomad

import _ "github.com/hashicorp/nomad"
