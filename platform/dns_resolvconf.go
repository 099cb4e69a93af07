package platform

// resolv.conf mode: SetDNS keeps the original in the state directory, then
// writes the planned file in place; a watcher (dns_watch.go) puts it back
// when another program rewrites it; RevertDNS writes the original back.
//
// In place means truncate and write through the same inode, never a
// rename: in containers and under `ip netns exec` resolv.conf is a bind
// mount, and renaming over a mount point fails (EBUSY).

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// resolvConf is the Resolver of DNSModeResolvConf.
type resolvConf struct {
	env    *dnsEnv
	backup string                            // the path of the backup of the original
	write  func(path string, b []byte) error // writeInPlace; tests make it fail

	mu       sync.Mutex // guards following
	active   bool       // SetDNS succeeded and RevertDNS has not
	server   netip.Addr // the DNS proxy
	orig     []byte     // the newest original: restored by RevertDNS
	wrote    []byte     // what vpcvpn wrote last
	fallback []netip.Addr
	ignored  []byte        // another instance's file the watcher logged
	rewrites []time.Time   // recent rewrites by other programs
	stop     chan struct{} // closed to stop the watcher; nil if none runs
	done     chan struct{} // closed when the watcher has returned
}

var _ Resolver = (*resolvConf)(nil)

func newResolvConf(env *dnsEnv) *resolvConf {
	return &resolvConf{env: env, backup: filepath.Join(env.StateDir, env.Instance+".resolv.conf"), write: writeInPlace}
}

func (c *resolvConf) SetDNS(d DNS) (DNSResult, error) {
	d, err := d.normalize()
	if err != nil {
		return DNSResult{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active {
		return DNSResult{}, errDNSSet
	}
	orig, err := c.cleanup()
	if errors.Is(err, fs.ErrNotExist) {
		return DNSResult{}, fmt.Errorf("platform: %s does not exist, so this machine has no DNS settings to split: create it, or start with --no-dns", c.env.ResolvConf)
	}
	if err != nil {
		return DNSResult{}, err
	}
	if err := c.apply(orig, d.Server); err != nil {
		return DNSResult{}, err
	}
	c.active, c.server, c.orig = true, d.Server, orig
	c.fallback = nameservers(orig, d.Server)
	c.env.log.Info("split DNS: resolv.conf names the DNS proxy", "path", c.env.ResolvConf, "server", d.Server, "fallback", c.fallback, "backup", c.backup)
	c.startWatch()
	return DNSResult{Mode: DNSModeResolvConf, Fallback: slices.Clone(c.fallback)}, nil
}

// apply keeps orig in the backup, then writes the resolv.conf that names
// server. If the write fails it puts orig back and removes the backup;
// c.mu is held.
func (c *resolvConf) apply(orig []byte, server netip.Addr) error {
	if err := writeBackup(c.backup, backupContent(c.env.ResolvConf, c.env.Instance, orig)); err != nil {
		return err
	}
	out := planResolvConf(orig, server, c.env.stamp(c.backup))
	if err := c.write(c.env.ResolvConf, out); err != nil {
		err = fileErr("write "+c.env.ResolvConf, err)
		if rerr := c.write(c.env.ResolvConf, orig); rerr != nil {
			return fmt.Errorf("%w; putting the original back failed too (%v): it is in %s", err, rerr, c.backup)
		}
		return errors.Join(err, removeBackup(c.backup))
	}
	c.wrote = out
	return nil
}

func (c *resolvConf) RevertDNS() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopWatch()
	if !c.active {
		return nil
	}
	b, err := os.ReadFile(c.env.ResolvConf)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fileErr("read "+c.env.ResolvConf, err)
	case err == nil && !c.isOurs(b):
		// Rewritten since the watcher last looked: the newest original.
		c.env.log.Info("split DNS: another program rewrote resolv.conf; keeping its version", "path", c.env.ResolvConf)
	default:
		if err := c.write(c.env.ResolvConf, c.orig); err != nil {
			return fileErr("restore "+c.env.ResolvConf+" (the original is in "+c.backup+")", err)
		}
	}
	if err := removeBackup(c.backup); err != nil {
		return err
	}
	c.active, c.wrote, c.orig, c.fallback = false, nil, nil, nil
	c.env.log.Info("split DNS: resolv.conf restored", "path", c.env.ResolvConf)
	return nil
}

// isOurs reports whether b is a resolv.conf this Resolver wrote, maybe
// edited since.
func (c *resolvConf) isOurs(b []byte) bool {
	s, ok := parseStamp(b)
	return bytes.Equal(b, c.wrote) || ok && c.env.ours(s)
}

func (c *resolvConf) CleanupDNS() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active {
		return nil
	}
	_, err := c.cleanup()
	var busy *busyError
	if errors.As(err, &busy) || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// cleanup restores a stale resolv.conf (see CleanupDNS) and returns the
// original: what resolv.conf holds now if it is not stamped. It returns a
// *busyError if a running instance wrote it; c.mu is held.
func (c *resolvConf) cleanup() ([]byte, error) {
	path := c.env.ResolvConf
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fileErr("read "+path, err)
	}
	s, ok := parseStamp(b)
	if !ok {
		return b, nil
	}
	if !c.env.stale(s) {
		return nil, &busyError{path: path, s: s, otherwise: "copy its backup " + s.backup + " over it, without the backup's first line"}
	}
	orig, err := readBackup(s.backup, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.env.log.Warn("split DNS: the backup of a stale resolv.conf is gone; rebuilding the original from its comments", "path", path, "backup", s.backup)
		orig = unplanResolvConf(b)
	case err != nil:
		return nil, err
	}
	if err := c.write(path, orig); err != nil {
		return nil, fileErr("restore "+path+" left by vpcvpn instance "+s.instance, err)
	}
	if err := removeBackup(s.backup); err != nil {
		return nil, err
	}
	c.env.log.Info("split DNS: restored resolv.conf left by a vpcvpn that did not stop cleanly", "path", path, "instance", s.instance, "pid", s.pid)
	return orig, nil
}

// writeInPlace replaces the contents of the file at path by truncating it
// and writing b through the same inode (see the file comment). A missing
// file is created.
func writeInPlace(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// writeBackup writes b to path atomically, mode 0600, making its
// directory if need be. The state directory is vpcvpn's own, so a rename
// is safe there.
func writeBackup(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fileErr("make the state directory", err)
	}
	f, err := os.CreateTemp(dir, ".resolv.conf-*")
	if err != nil {
		return fileErr("back up resolv.conf", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fileErr("back up resolv.conf", err)
	}
	return nil
}

// readBackup returns the original of conf kept in the backup at path.
func readBackup(path, conf string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fileErr("read the backup of "+conf, err)
	}
	orig, ok := parseBackup(b)
	if !ok {
		return nil, fmt.Errorf("platform: %s names %s as its backup, which is not one of vpcvpn's: restore %s by hand (the #vpcvpn# lines are the original nameservers)", conf, path, conf)
	}
	return orig, nil
}

func removeBackup(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fileErr("remove the backup of resolv.conf", err)
	}
	return nil
}
