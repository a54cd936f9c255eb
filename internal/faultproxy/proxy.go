// Package faultproxy is a TCP proxy for tests that puts real network faults
// between a client and a server: it forwards bytes, holds them without
// closing any connection (a server that stops answering), or cuts every
// connection and refuses new ones (a partition).
//
// The proxy also counts what clients send through it, in total and as
// occurrences of patterns a test asks about, so that a test can show which
// calls a client made during a fault without timing anything.
package faultproxy

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Mode is what the proxy does with connections and bytes.
type Mode int

// The modes of a proxy.
const (
	// Forward passes bytes both ways as they come.
	Forward Mode = iota

	// Hold accepts connections and reads what clients send, but delivers
	// nothing either way and closes nothing, until the mode changes back
	// to Forward, which delivers what was held.
	Hold

	// Cut closes every connection and closes new ones as soon as they are
	// accepted, until the mode changes.
	Cut
)

// Proxy forwards TCP connections from a loopback port to a target address.
// The zero value is not usable; call Start. It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	changed  *sync.Cond // broadcast when mode changes or a link closes
	mode     Mode
	links    map[*link]struct{}
	patterns map[string]*atomic.Int64
	closed   bool

	received atomic.Int64 // bytes read from clients, held or not
	accepted atomic.Int64 // connections accepted
	wg       sync.WaitGroup
}

// Start listens on a free loopback port, forwards to target, and stops when
// the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := Listen(target)
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Listen returns a proxy on a free loopback port that forwards to target.
// The caller must Close it.
func Listen(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		ln:       ln,
		target:   target,
		links:    make(map[*link]struct{}),
		patterns: make(map[string]*atomic.Int64),
	}
	p.changed = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns host:port where the proxy listens.
func (p *Proxy) Addr() string {
	return p.ln.Addr().String()
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode switches the proxy to m. Switching to Cut closes every open
// connection before it returns.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	var cut []*link
	if m == Cut {
		for l := range p.links {
			cut = append(cut, l)
		}
	}
	p.changed.Broadcast()
	p.mu.Unlock()

	for _, l := range cut {
		l.close()
	}
}

// Received returns how many bytes clients have sent to the proxy, whether
// they were forwarded or held.
func (p *Proxy) Received() int64 {
	return p.received.Load()
}

// Accepted returns how many connections the proxy has accepted.
func (p *Proxy) Accepted() int64 {
	return p.accepted.Load()
}

// Watch starts counting the occurrences of pattern in what clients send,
// held bytes included, and returns the counter. Occurrences split across
// two reads are counted too. Watching the same pattern twice returns the
// same counter.
func (p *Proxy) Watch(pattern string) *atomic.Int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.patterns[pattern]
	if c == nil {
		c = new(atomic.Int64)
		p.patterns[pattern] = c
	}
	return c
}

// Open returns how many client connections are open.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines to end.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var all []*link
	for l := range p.links {
		all = append(all, l)
	}
	p.changed.Broadcast()
	p.mu.Unlock()

	p.ln.Close()
	for _, l := range all {
		l.close()
	}
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.accepted.Add(1)

		p.mu.Lock()
		if p.closed || p.mode == Cut {
			p.mu.Unlock()
			conn.Close()
			continue
		}
		l := &link{proxy: p, client: conn}
		p.links[l] = struct{}{}
		p.mu.Unlock()

		p.wg.Add(1)
		go l.run()
	}
}

// count adds what a client sent to the counters. tail holds the last bytes
// of the previous read, so that a pattern split across reads is found.
func (p *Proxy) count(tail, chunk []byte) []byte {
	p.received.Add(int64(len(chunk)))

	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.patterns) == 0 {
		return nil
	}
	longest := 0
	for pat := range p.patterns {
		longest = max(longest, len(pat))
	}
	window := append(tail, chunk...)
	for pat, c := range p.patterns {
		// Only occurrences that end inside chunk are new.
		start := max(0, len(tail)-len(pat)+1)
		c.Add(int64(bytes.Count(window[start:], []byte(pat))))
	}
	keep := min(len(window), longest-1)
	return append([]byte(nil), window[len(window)-keep:]...)
}

func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.changed.Broadcast()
	p.mu.Unlock()
}
