package main

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
	"time"

	"github.com/redis/go-redis/v9"
)

// server is a redis-server process that this program started.
type server struct {
	cmd  *exec.Cmd
	dir  string
	addr string
	once sync.Once
}

// startServer starts redis-server on a free loopback port in a temporary
// folder, with persistence off, and waits until it answers.
func startServer() (*server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf(
			"redis-server not found (Debian: apt-get install -y redis-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "ratelimit-bench-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer log.Close()

	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s := &server{cmd: cmd, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}

	deadline := time.Now().Add(15 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: s.addr})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer: %w", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server by its PID, waits for it and removes its folder.
// It may be called more than once, from any goroutine.
func (s *server) stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		os.RemoveAll(s.dir)
	})
}

// version returns the redis_version the server reports.
func (s *server) version(ctx context.Context, c redis.UniversalClient) string {
	info, err := info(ctx, c, "server")
	if err != nil {
		return "unknown"
	}
	return info["redis_version"]
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// info returns the fields of one INFO section.
func info(ctx context.Context, c redis.UniversalClient, section string) (map[string]string, error) {
	text, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	fields := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// serverCommands returns how many commands Redis has run, script-internal
// calls included, not counting INFO.
func serverCommands(ctx context.Context, c redis.UniversalClient) (int64, error) {
	stats, err := info(ctx, c, "commandstats")
	if err != nil {
		return 0, err
	}
	var total int64
	for name, v := range stats {
		if !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("commandstats %s: %w", name, err)
		}
		total += n
	}
	return total, nil
}

// serverCPU returns the CPU time Redis has used, user and system, from
// INFO cpu.
func serverCPU(ctx context.Context, c redis.UniversalClient) (time.Duration, error) {
	fields, err := info(ctx, c, "cpu")
	if err != nil {
		return 0, err
	}
	var total float64
	for _, name := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(fields[name], 64)
		if err != nil {
			return 0, fmt.Errorf("info cpu %s: %w", name, err)
		}
		total += v
	}
	return time.Duration(total * float64(time.Second)), nil
}
