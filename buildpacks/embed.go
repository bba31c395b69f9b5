// Package buildpacks holds Dynogrid's built-in buildpacks, which follow Heroku's classic
// buildpack contract (bin/detect, bin/compile, bin/release), and the build dyno's program
// that runs them (builder/build).
package buildpacks

import "embed"

// FS holds builder/ and one directory per built-in buildpack.
//
//go:embed builder ruby nodejs procfile
var FS embed.FS

// BuiltIn are the built-in buildpacks, in the order an app is detected against them
// when its spec names none.
var BuiltIn = []string{"ruby", "nodejs", "procfile"}
