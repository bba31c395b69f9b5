//go:build !race

package sysconn

const raceEnabled = false
