//go:build !race

package router

// underRace: see race_on_test.go.
const underRace = false
