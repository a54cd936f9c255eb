// Package processtest builds a program of this module once for a test
// binary and runs it as a child process: started with an environment of
// its own, waited for until it answers over HTTP, stopped with SIGTERM,
// and killed when the test ends, with what it printed kept for the test.
package processtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Run builds the main package in the folder pkg into a new temporary
// folder, sets *path to the binary, runs the tests of m and removes the
// folder. It returns the exit code for os.Exit. When the build fails, it
// prints why on stderr and returns 1 without running any test.
//
// Run is meant for TestMain, so that the tests of a package build the
// program once and not once each.
func Run(m *testing.M, pkg string, path *string) int {
	dir, err := os.MkdirTemp("", "processtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, "processtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	bin, err := build(pkg, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "processtest:", err)
		return 1
	}
	*path = bin
	return m.Run()
}

// build builds pkg into dir, the compiler printing to stderr, and returns
// the path of the binary, named after the folder of pkg.
func build(pkg, dir string) (string, error) {
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	bin := filepath.Join(dir, filepath.Base(abs))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	return bin, nil
}
