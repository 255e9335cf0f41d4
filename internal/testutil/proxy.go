package testutil

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections on a loopback port to a target address.
// Cut closes every connection through it and refuses new ones until Resume:
// the network going away under a client while the server keeps running.
// Stall drops every byte instead while the connections stay open: a
// network that silently stopped carrying anything (a dead NAT entry).
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and the pumps

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	refused bool
	stalled bool
}

// StartProxy listens on 127.0.0.1 and forwards to target until the test
// ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		p.mu.Lock()
		if p.refused || err != nil {
			p.mu.Unlock()
			down.Close()
			if up != nil {
				up.Close()
			}
			continue
		}
		p.conns[down], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pump(up, down) })
		p.wg.Go(func() { p.pump(down, up) })
	}
}

// pump copies one direction, or drops what it reads while stalled; when
// either end fails, both close.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled := p.stalled
			p.mu.Unlock()
			if !stalled {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
		}
		if err != nil {
			break
		}
	}
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
	dst.Close()
	src.Close()
}

// Cut closes every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = true
	for c := range p.conns {
		c.Close()
	}
}

// Stall drops every byte through the proxy, keeping the connections open.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

// Resume accepts connections and carries bytes again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused, p.stalled = false, false
}
