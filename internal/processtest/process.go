package processtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a program that a test started. It is killed, if it still
// runs, when the test ends. Its methods are safe for concurrent use.
type Process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  output
	done chan struct{} // closed once the process has exited and code is set
	code int
}

// Start runs the binary at path with args and with env as its whole
// environment (nothing is inherited from the test), and returns without
// waiting for it to be ready. Standard output and standard error are
// kept for Output. The process gets SIGKILL if the test binary dies
// first, and by Kill when the test ends.
func Start(t testing.TB, path string, env map[string]string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, name: filepath.Base(path), done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = make([]string, 0, len(env))
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}

	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// WaitReady polls url with GET until it answers 200, and fails the test
// when the process exits first or within passes without that answer.
func (p *Process) WaitReady(url string, within time.Duration) {
	p.t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: time.Second, Transport: tr}

	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited with status %d before %s answered:\n%s",
				p.name, p.code, url, p.Output())
		default:
		}
		if res, err := client.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not answer %s within %v:\n%s", p.name, url, within, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID returns the process id.
func (p *Process) PID() int {
	return p.cmd.Process.Pid
}

// Signal sends sig to the process. A process that has exited already is
// not an error.
func (p *Process) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.Exited() {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

// Stop sends SIGTERM, as an orchestrator would, and returns the exit
// status once the process has exited. A process still running after
// within is killed, and the test fails.
func (p *Process) Stop(within time.Duration) int {
	p.t.Helper()
	p.Signal(syscall.SIGTERM)
	return p.Wait(within)
}

// Wait returns the exit status once the process has exited. A process
// still running after within is killed, and the test fails.
func (p *Process) Wait(within time.Duration) int {
	p.t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.code
	case <-timer.C:
		p.Kill()
		p.t.Fatalf("%s still ran %v later:\n%s", p.name, within, p.Output())
		return -1
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits until
// it has exited. A process that has exited already is left as it is.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process has printed so far, on standard output
// and standard error together.
func (p *Process) Output() string {
	return p.out.String()
}

// LogLines returns the lines of Output that are JSON objects whose msg
// field is msg, as a slog JSON handler writes them, in order.
func (p *Process) LogLines(msg string) []map[string]any {
	var lines []map[string]any
	for line := range strings.Lines(p.Output()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

// output is a buffer that the process writes while the test reads it.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
