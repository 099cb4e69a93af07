package platform

// The resolv.conf watcher: every PollInterval it compares resolv.conf with
// what vpcvpn wrote. A version another program wrote (a DHCP client on a
// new network) becomes the original: it is backed up, restored at
// teardown, and split DNS is set again on top of it.
//
//	ours, unchanged             nothing
//	not stamped                 the newest original: back up, write ours again
//	stamped by us, edited       write ours again
//	stamped by another vpcvpn   leave it (logged once)
//	missing or unreadable       try again next time

import (
	"bytes"
	"net/netip"
	"os"
	"slices"
	"time"
)

// rewriteWarn: this many rewrites by other programs within rewriteWindow
// mean something fights vpcvpn over resolv.conf.
const (
	rewriteWarn   = 5
	rewriteWindow = time.Minute
)

// startWatch starts the watcher; c.mu is held.
func (c *resolvConf) startWatch() {
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.watch(c.stop, c.done)
}

// stopWatch stops the watcher, if one runs, and waits for it; c.mu is
// held, and released while it waits (the watcher takes it).
func (c *resolvConf) stopWatch() {
	for c.stop != nil {
		stop, done := c.stop, c.done
		c.stop, c.done = nil, nil
		c.mu.Unlock()
		close(stop)
		<-done
		c.mu.Lock()
	}
}

func (c *resolvConf) watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(c.env.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if fb, changed := c.check(); changed && c.env.FallbackChanged != nil {
				c.env.FallbackChanged(fb)
			}
		}
	}
}

// check compares resolv.conf with what vpcvpn wrote and acts as the file
// comment says. It returns the new fallback when a rewrite changed it.
func (c *resolvConf) check() (fallback []netip.Addr, changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.env.ResolvConf
	b, err := os.ReadFile(path)
	if !c.active || err != nil || bytes.Equal(b, c.wrote) {
		if err != nil {
			c.env.log.Debug("split DNS: cannot read resolv.conf; trying again", "path", path, "err", err)
		}
		return nil, false
	}
	if s, ok := parseStamp(b); ok && !c.env.ours(s) {
		if !bytes.Equal(b, c.ignored) {
			c.env.log.Warn("split DNS: another vpcvpn instance wrote resolv.conf; leaving it", "path", path, "instance", s.instance, "pid", s.pid)
			c.ignored = b
		}
		return nil, false
	} else if ok {
		c.env.log.Info("split DNS: resolv.conf was edited; writing it again", "path", path)
		if err := c.write(path, c.wrote); err != nil {
			c.env.log.Warn("split DNS: cannot write resolv.conf; trying again", "path", path, "err", err)
		}
		return nil, false
	}
	return c.rewritten(b)
}

// rewritten takes b, written by another program, as the newest original
// and sets split DNS again on top of it; c.mu is held.
func (c *resolvConf) rewritten(b []byte) (fallback []netip.Addr, changed bool) {
	c.env.log.Info("split DNS: another program (a DHCP client?) rewrote resolv.conf; setting split DNS again, and its version comes back at teardown", "path", c.env.ResolvConf)
	c.noteRewrite()
	if err := c.apply(b, c.server); err != nil {
		c.env.log.Warn("split DNS: cannot set split DNS again; trying again", "err", err)
		return nil, false
	}
	c.orig = b
	fb := nameservers(b, c.server)
	if slices.Equal(fb, c.fallback) {
		return nil, false
	}
	c.fallback = fb
	c.env.log.Info("split DNS: the nameservers changed", "fallback", fb)
	return slices.Clone(fb), true
}

// noteRewrite counts a rewrite and warns once when they come too fast;
// c.mu is held.
func (c *resolvConf) noteRewrite() {
	now := c.env.now()
	c.rewrites = slices.DeleteFunc(c.rewrites, func(t time.Time) bool { return now.Sub(t) > rewriteWindow })
	c.rewrites = append(c.rewrites, now)
	if len(c.rewrites) == rewriteWarn {
		c.env.log.Warn("split DNS: another program keeps rewriting resolv.conf (NetworkManager? resolvconf?): tell it to leave resolv.conf alone, or start vpcvpn with --no-dns", "path", c.env.ResolvConf, "rewrites", len(c.rewrites), "within", rewriteWindow)
	}
}
