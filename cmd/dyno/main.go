// Command dyno is the Dynogrid CLI.
package main

import (
	"os"

	"github.com/dynogrid/dynogrid/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
