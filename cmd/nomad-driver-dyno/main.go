// Command nomad-driver-dyno is the Nomad task driver plugin `dyno`.
package main

import (
	"os"
	"time"

	"github.com/dynogrid/dynogrid/driver"
)

func main() {
	exitWithClient()
	driver.Serve()
}

// exitWithClient ends the plugin soon after the Nomad client that started it dies. An
// orphaned plugin cannot log (its stderr is the dead client's pipe: the first write
// kills it with SIGPIPE), so a restarted client that reattached to it could lose it in
// the middle of recovering its dynos, and restart them. Gone at once, it leaves the
// restarted client to start a fresh plugin, which recovers every dyno from its
// executor: the dynos themselves never stop.
func exitWithClient() {
	client := os.Getppid()
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			if os.Getppid() != client {
				os.Exit(0)
			}
		}
	}()
}
