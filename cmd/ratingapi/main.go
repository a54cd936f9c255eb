// Command ratingapi serves the demo Rating API, rate limited per API key.
//
// It is configured by the environment alone (see the README for the
// variables) and stops gracefully on SIGINT and SIGTERM. With no variable
// set it serves on :8080 with the memory store. "ratingapi healthcheck"
// asks /healthz of a running instance and exits 0 when it answers, for
// container health checks in images without a shell.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	environ := environMap(os.Environ())
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(environ, os.Stderr))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, environ, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
