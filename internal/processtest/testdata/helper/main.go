// Command helper is the program that the tests of processtest run. With
// ADDR set it serves /healthz there, logs JSON lines, and exits with
// EXIT_CODE on SIGTERM; without ADDR it prints its environment and exits.
package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		env := os.Environ()
		slices.Sort(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
		return
	}

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	http.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	go func() { _ = http.Serve(ln, nil) }()
	log.Info("ready", "addr", addr)

	<-term
	log.Info("stopped")
	code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
	os.Exit(code)
}
