//go:build race

package sysconn

// raceEnabled: under the race detector, reads and writes go through package net, whose
// reads and writes tell the detector that a write to a socket happens before the read of
// its bytes at the other end (the synchronisation that tests, client and server in one
// process, rely on); raw system calls would hide it.
const raceEnabled = true
