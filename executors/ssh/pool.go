package ssh

import (
	"context"
	"errors"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// ErrClosed is returned by Execute after Close.
var ErrClosed = errors.New("ssh executor closed")

// pool keeps at most one dial in flight and any number of open connections
// per key, each carrying up to max sessions at once. A connection with no
// session for idle is closed; so is one the server dropped.
type pool struct {
	max  int
	idle time.Duration

	mu     sync.Mutex
	conns  map[string][]*conn
	closed bool

	// onClose, when set (tests), is called after a connection is closed
	// for being idle.
	onClose func()
}

// conn is one SSH connection of the pool. Every field but ready, client
// and err (written once, before ready is closed) is guarded by pool.mu.
type conn struct {
	key    string
	ready  chan struct{}
	client *gossh.Client
	err    error

	active  int
	gen     int  // bumped on every release: a stale idle timer does nothing
	retired bool // takes no new session (dead, full or closed)
	timer   *time.Timer
	refused map[string]bool // env names the server refused to Setenv
}

func newPool(max int, idle time.Duration) *pool {
	return &pool{max: max, idle: idle, conns: make(map[string][]*conn)}
}

// get returns a connection for key with a session slot reserved, reusing
// one with a free slot or dialing a new one. Tasks that ask for the same
// key while it is being dialed wait for that dial and share its outcome.
func (p *pool) get(ctx context.Context, key string, dial func(context.Context) (*gossh.Client, error)) (*conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	for _, c := range p.conns[key] {
		if !c.retired && c.active < p.max {
			c.active++
			if c.timer != nil {
				c.timer.Stop()
				c.timer = nil
			}
			p.mu.Unlock()
			select {
			case <-c.ready:
			case <-ctx.Done():
				p.put(c)
				return nil, ctx.Err()
			}
			if c.err != nil {
				p.put(c)
				return nil, c.err
			}
			return c, nil
		}
	}
	c := &conn{key: key, ready: make(chan struct{}), active: 1}
	p.conns[key] = append(p.conns[key], c)
	p.mu.Unlock()

	client, err := dial(ctx)
	p.mu.Lock()
	c.client, c.err = client, err
	closed := p.closed
	if err != nil || closed {
		p.retire(c)
	}
	p.mu.Unlock()
	close(c.ready)
	if err != nil {
		return nil, err
	}
	if closed {
		client.Close()
		return nil, ErrClosed
	}
	go func() { // the server or the network dropped it
		_ = client.Wait()
		p.mu.Lock()
		p.retire(c)
		p.mu.Unlock()
	}()
	return c, nil
}

// put releases a session slot of c. A connection left without sessions is
// closed after the idle time, at once when it takes no new session.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	c.active--
	c.gen++
	if c.active > 0 || c.client == nil {
		p.mu.Unlock()
		return
	}
	if c.retired || p.idle <= 0 {
		p.retire(c)
		p.mu.Unlock()
		c.client.Close()
		return
	}
	gen := c.gen
	c.timer = time.AfterFunc(p.idle, func() {
		p.mu.Lock()
		if c.gen != gen || c.active > 0 || c.retired {
			p.mu.Unlock()
			return
		}
		p.retire(c)
		p.mu.Unlock()
		c.client.Close()
		if p.onClose != nil {
			p.onClose()
		}
	})
	p.mu.Unlock()
}

// discard retires c after a session could not be opened on it (the
// connection is dead, or the server allows fewer sessions than max); it
// closes once its running sessions end.
func (p *pool) discard(c *conn) {
	p.mu.Lock()
	p.retire(c)
	p.mu.Unlock()
}

// retire takes c out of the pool; p.mu is held.
func (p *pool) retire(c *conn) {
	c.retired = true
	list := p.conns[c.key]
	for i, x := range list {
		if x == c {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.conns, c.key)
	} else {
		p.conns[c.key] = list
	}
}

// refused reports whether the server refused Setenv of name on c before.
func (p *pool) refused(c *conn, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.refused[name]
}

func (p *pool) refuse(c *conn, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.refused == nil {
		c.refused = make(map[string]bool)
	}
	c.refused[name] = true
}

// close closes every connection; sessions still running on them fail.
func (p *pool) close() error {
	p.mu.Lock()
	p.closed = true
	var all []*conn
	for _, list := range p.conns {
		all = append(all, list...)
	}
	p.conns = make(map[string][]*conn)
	for _, c := range all {
		c.retired = true
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	p.mu.Unlock()
	for _, c := range all {
		<-c.ready // a dial in flight closes its own client
		if c.client != nil {
			c.client.Close()
		}
	}
	return nil
}
