// Command netext is the command-line client of netext: it manages saved VPN
// configurations and sessions through netextd's control API. See package
// cli for the commands and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/netext/netext/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Run(ctx, os.Args[1:], cli.Options{})
	stop()
	os.Exit(code)
}
