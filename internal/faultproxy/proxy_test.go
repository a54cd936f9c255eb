package faultproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/internal/waittest"
)

// echo starts a server that sends back every line it reads.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

func roundTrip(t *testing.T, conn net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return got[:len(got)-1]
}

func TestForward(t *testing.T) {
	p := Start(t, echo(t))
	conn, r := dial(t, p.Addr())
	if got := roundTrip(t, conn, r, "hello"); got != "hello" {
		t.Fatalf("echo = %q, want hello", got)
	}
	if got := p.Received(); got != 6 {
		t.Fatalf("Received = %d, want 6", got)
	}
}

func TestHoldKeepsConnectionAndCounts(t *testing.T) {
	p := Start(t, echo(t))
	hits := p.Watch("needle")
	conn, r := dial(t, p.Addr())
	roundTrip(t, conn, r, "warm")

	p.SetMode(Hold)
	if _, err := io.WriteString(conn, "a nee"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "dle b\n"); err != nil {
		t.Fatal(err)
	}
	waittest.Until(t, "held bytes counted", func() bool { return hits.Load() == 1 })

	// Nothing comes back while held, and the connection stays open.
	_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("read a byte while the proxy holds")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read while held: %v, want a timeout", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	if p.Open() != 1 {
		t.Fatalf("Open = %d while held, want 1", p.Open())
	}

	p.SetMode(Forward)
	got, err := r.ReadString('\n')
	if err != nil || got != "a needle b\n" {
		t.Fatalf("after Forward read %q, %v; want the held line", got, err)
	}
}

func TestCutClosesAndRefuses(t *testing.T) {
	p := Start(t, echo(t))
	conn, r := dial(t, p.Addr())
	roundTrip(t, conn, r, "warm")

	p.SetMode(Cut)
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("read a byte from a cut connection")
	}
	waittest.Until(t, "no open link", func() bool { return p.Open() == 0 })

	conn2, r2 := dial(t, p.Addr())
	_, _ = io.WriteString(conn2, "x\n")
	if _, err := r2.ReadByte(); err == nil {
		t.Fatal("a new connection got an answer while cut")
	}

	p.SetMode(Forward)
	conn3, r3 := dial(t, p.Addr())
	if got := roundTrip(t, conn3, r3, "back"); got != "back" {
		t.Fatalf("after Forward echo = %q", got)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	p, err := Listen(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, r := dial(t, p.Addr())
	roundTrip(t, conn, r, "warm")
	p.SetMode(Hold)
	_, _ = io.WriteString(conn, "held\n")
	p.Close()
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("connection still answers after Close")
	}
}
