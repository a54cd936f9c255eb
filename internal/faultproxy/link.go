package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
)

// link is one client connection and its connection to the target.
type link struct {
	proxy  *Proxy
	client net.Conn
	server net.Conn

	closed    atomic.Bool
	closeOnce sync.Once
}

// pipe carries bytes one way. Reading never waits for the mode, so that
// held bytes are still counted; writing waits while the proxy holds.
type pipe struct {
	link    *link
	src     net.Conn
	dst     net.Conn
	counted bool // bytes from the client are counted

	queue [][]byte // read and not yet written; guarded by proxy.mu
	eof   bool     // src ended; guarded by proxy.mu
}

func (l *link) run() {
	p := l.proxy
	defer p.wg.Done()
	defer p.remove(l)

	server, err := net.Dial("tcp", p.target)
	if err != nil {
		l.client.Close()
		return
	}
	l.server = server
	if l.isClosed() {
		// Cut or closed while dialling.
		server.Close()
		l.client.Close()
		return
	}

	up := &pipe{link: l, src: l.client, dst: server, counted: true}
	down := &pipe{link: l, src: server, dst: l.client}
	var wg sync.WaitGroup
	for _, pp := range []*pipe{up, down} {
		wg.Add(2)
		go func() { defer wg.Done(); pp.read() }()
		go func() { defer wg.Done(); pp.write() }()
	}
	wg.Wait()
	l.close()
}

func (l *link) isClosed() bool {
	return l.closed.Load()
}

// close ends both connections; the pipes then stop.
func (l *link) close() {
	l.closeOnce.Do(func() {
		p := l.proxy
		p.mu.Lock()
		l.closed.Store(true)
		p.changed.Broadcast()
		p.mu.Unlock()

		l.client.Close()
		if l.server != nil {
			l.server.Close()
		}
	})
}

func (pp *pipe) read() {
	p := pp.link.proxy
	var tail []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := pp.src.Read(buf)
		if n > 0 {
			chunk := append([]byte(nil), buf[:n]...)
			if pp.counted {
				tail = p.count(tail, chunk)
			}
			p.mu.Lock()
			pp.queue = append(pp.queue, chunk)
			p.changed.Broadcast()
			p.mu.Unlock()
		}
		if err != nil {
			p.mu.Lock()
			pp.eof = true
			p.changed.Broadcast()
			p.mu.Unlock()
			return
		}
	}
}

func (pp *pipe) write() {
	p := pp.link.proxy
	for {
		p.mu.Lock()
		for !pp.link.isClosed() && !p.closed &&
			(p.mode == Hold || (len(pp.queue) == 0 && !pp.eof)) {
			p.changed.Wait()
		}
		if pp.link.isClosed() || p.closed || p.mode == Cut {
			p.mu.Unlock()
			pp.link.close()
			return
		}
		chunks, eof := pp.queue, pp.eof
		pp.queue = nil
		p.mu.Unlock()

		for _, c := range chunks {
			if _, err := pp.dst.Write(c); err != nil {
				pp.link.close()
				return
			}
		}
		if eof {
			// The other side may still answer; a half-close keeps it open.
			if tc, ok := pp.dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			} else {
				pp.link.close()
			}
			return
		}
	}
}
