// Package redistest starts real redis-server processes on loopback ports
// for tests, and stops them when the test ends.
//
// A test that needs Redis calls Start. Where redis-server is not installed
// the test is skipped with a message saying how to install it, except when
// the CI environment variable is set: there it fails, so that a machine
// without Redis can never pass the suite by skipping it.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// readyWait bounds how long a starting server may take to answer.
const readyWait = 15 * time.Second

// Server is one redis-server process that a test started.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
	out *os.File
}

// Option adds to the command line of a server.
type Option func(*config)

type config struct {
	args []string
	tls  bool
}

// WithArgs adds redis-server arguments, for example
// WithArgs("--appendonly", "yes").
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Binary returns the path of redis-server, skipping or failing t when it is
// missing.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	msg := "redis-server not found on PATH; install it (Debian: apt-get install -y redis-server)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this fails instead of skipping")
	}
	t.Skip(msg)
	return ""
}

// Start starts a redis-server on a free loopback port in a temporary folder
// and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), port: FreePort(t)}
	s.args = append([]string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--protected-mode", "no",
	}, c.args...)
	if c.tls {
		s.args = append(s.args, "--tls-port", strconv.Itoa(s.port))
	}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// Addr returns host:port of the server.
func (s *Server) Addr() string {
	return "127.0.0.1:" + strconv.Itoa(s.port)
}

// Port returns the port of the server.
func (s *Server) Port() int {
	return s.port
}

// Dir returns the working folder of the server, where its append-only
// file lives.
func (s *Server) Dir() string {
	return s.dir
}

// PID returns the process id of the running server, or 0.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Restart starts the server again on the same port and folder, after Kill
// or Stop, and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("redistest: server on %s is still running", s.Addr())
	}

	out, err := os.OpenFile(filepath.Join(s.dir, "server.log"),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	args := append([]string{"--port", s.portArg()}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd, s.out = cmd, out

	if err := s.waitReady(); err != nil {
		s.killLocked()
		s.t.Fatalf("redistest: redis-server on %s: %v\n%s", s.Addr(), err, s.log())
	}
}

// portArg is the plain port, or 0 when the server listens with TLS only.
func (s *Server) portArg() string {
	for i, a := range s.args {
		if a == "--tls-port" && i+1 < len(s.args) {
			return "0"
		}
	}
	return strconv.Itoa(s.port)
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

// Stop ends the server with SIGTERM, as an orderly shutdown would, and
// waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(readyWait):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
	s.out.Close()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
	s.out.Close()
}

// Client returns a go-redis client of the server that the test closes when
// it ends. Extra settings can be made in configure.
func (s *Server) Client(t testing.TB, configure ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ContextTimeoutEnabled: true}
	for _, fn := range configure {
		fn(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// Log returns what the server printed, for failure messages.
func (s *Server) Log() string {
	return s.log()
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

// waitReady waits until the server accepts connections and has loaded its
// data, which the log says with "Ready to accept connections".
func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyWait)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log(), "Ready to accept connections") {
			conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
			if err == nil {
				conn.Close()
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v", readyWait)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Info returns the fields of INFO section on the server.
func Info(ctx context.Context, c redis.UniversalClient, section string) (map[string]string, error) {
	text, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	fields := make(map[string]string)
	scanner := bufio.NewScanner(strings.NewReader(text))
	for scanner.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(scanner.Text()), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}
