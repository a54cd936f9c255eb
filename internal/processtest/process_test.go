package processtest_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/internal/processtest"
	"github.com/openclaw/ratelimit/internal/redistest"
)

// helper is the binary of testdata/helper that TestMain builds.
var helper string

func TestMain(m *testing.M) {
	os.Exit(processtest.Run(m, "./testdata/helper", &helper))
}

// patience bounds every wait; only a test that would hang reaches it.
const patience = 20 * time.Second

// serve starts the helper as a server on a free port and waits for it.
func serve(t *testing.T, exitCode string) *processtest.Process {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	p := processtest.Start(t, helper, map[string]string{"ADDR": addr, "EXIT_CODE": exitCode})
	p.WaitReady("http://"+addr+"/healthz", patience)
	return p
}

func TestStopReturnsTheExitStatusAndKeepsTheLogs(t *testing.T) {
	p := serve(t, "7")
	if p.Exited() {
		t.Fatal("the server exited right after it answered")
	}
	if lines := p.LogLines("ready"); len(lines) != 1 || lines[0]["addr"] == nil {
		t.Fatalf("ready lines %v, want one with the address:\n%s", lines, p.Output())
	}

	if code := p.Stop(patience); code != 7 {
		t.Fatalf("exit status %d after SIGTERM, want 7:\n%s", code, p.Output())
	}
	if !p.Exited() {
		t.Fatal("Exited is false after Stop")
	}
	if len(p.LogLines("stopped")) != 1 {
		t.Fatalf("no stopped line:\n%s", p.Output())
	}
	if len(p.LogLines("missing")) != 0 {
		t.Fatal("LogLines found a message that was never logged")
	}
}

func TestKillEndsTheProcess(t *testing.T) {
	p := serve(t, "0")
	p.Kill()
	if !p.Exited() {
		t.Fatal("Exited is false after Kill")
	}
	if code := p.Wait(patience); code != -1 {
		t.Fatalf("exit status %d after SIGKILL, want -1 (ended by a signal)", code)
	}
	if len(p.LogLines("stopped")) != 0 {
		t.Fatalf("a killed process logged its orderly stop:\n%s", p.Output())
	}
	p.Kill() // a second Kill of an exited process returns at once
}

func TestEnvironmentIsOnlyWhatIsGiven(t *testing.T) {
	t.Setenv("PROCESSTEST_INHERITED", "yes")
	p := processtest.Start(t, helper, map[string]string{"A": "1", "B": "two words"})
	if code := p.Wait(patience); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, p.Output())
	}
	if got, want := p.Output(), "A=1\nB=two words\n"; got != want {
		t.Fatalf("environment %q, want %q and nothing inherited", got, want)
	}
}
