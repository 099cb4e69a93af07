package platform

// /etc/resolver mode (macOS): one file per split domain, named after it,
// which mDNSResponder picks up by itself (resolver(5)):
//
//	/etc/resolver/rds.amazonaws.com
//	    # vpcvpn instance=vpcvpn0 pid=4242
//	    # Split DNS through the vpcvpn tunnel; vpcvpn removes this file when it stops.
//	    nameserver 100.77.0.53
//
// vpcvpn never overwrites a file it did not write (a VPN client's, an
// administrator's): SetDNS fails naming it. RevertDNS removes the files
// this instance wrote, CleanupDNS those of instances that are gone.
//
// The planning and file handling here are portable, so they are tested on
// every OS; dns_darwin.go only chooses them.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

const resolverFileNote = "# Split DNS through the vpcvpn tunnel; vpcvpn removes this file when it stops."

// maxResolverFile bounds what is read of a file in the resolver directory:
// a stamp is on the first line.
const maxResolverFile = 4096

// A resolverFile is one file of the resolver directory.
type resolverFile struct {
	name string // the domain
	data []byte
}

// planResolverFiles returns the files that send d's domains to d.Server,
// stamped with s, in the order of d.Domains.
func planResolverFiles(d DNS, s stamp) []resolverFile {
	files := make([]resolverFile, 0, len(d.Domains))
	for _, dom := range d.Domains {
		data := fmt.Sprintf("%s\n%s\nnameserver %s\n", s, resolverFileNote, d.Server)
		files = append(files, resolverFile{name: dom, data: []byte(data)})
	}
	return files
}

// resolverDir is the Resolver of DNSModeResolverFiles.
type resolverDir struct {
	env *dnsEnv

	mu      sync.Mutex // guards following
	active  bool       // SetDNS succeeded and RevertDNS has not finished
	written []string   // paths of the files SetDNS wrote and RevertDNS has not removed
}

var _ Resolver = (*resolverDir)(nil)

func (r *resolverDir) SetDNS(d DNS) (DNSResult, error) {
	d, err := d.normalize()
	if err != nil {
		return DNSResult{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active {
		return DNSResult{}, errDNSSet
	}
	if err := r.cleanup(); err != nil {
		return DNSResult{}, err
	}
	if err := os.MkdirAll(r.env.ResolverDir, 0o755); err != nil {
		return DNSResult{}, fileErr("make "+r.env.ResolverDir, err)
	}
	for _, f := range planResolverFiles(d, r.env.stamp("")) {
		path := filepath.Join(r.env.ResolverDir, f.name)
		if err := createFile(path, f.data); err != nil {
			return DNSResult{}, errors.Join(r.conflict(path, f.name, err), r.remove())
		}
		r.written = append(r.written, path)
	}
	r.active = true
	r.env.log.Info("split DNS: resolver files name the DNS proxy", "dir", r.env.ResolverDir, "server", d.Server, "domains", d.Domains)
	return DNSResult{Mode: DNSModeResolverFiles}, nil
}

// conflict explains why the file of domain at path could not be created.
func (r *resolverDir) conflict(path, domain string, err error) error {
	if !errors.Is(err, fs.ErrExist) {
		return fileErr("write "+path, err)
	}
	if s, ok := parseStamp(readHead(path)); ok {
		return &busyError{path: path, s: s, otherwise: "remove it"} // a stale one was removed already
	}
	return fmt.Errorf("platform: %s exists and is not vpcvpn's, so vpcvpn leaves it alone: remove it, or leave out the split domain %s", path, domain)
}

func (r *resolverDir) RevertDNS() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.remove(); err != nil {
		return err
	}
	r.active = false
	return nil
}

// remove deletes the files in r.written, newest first, but not one that
// another program has replaced since; r.mu is held.
func (r *resolverDir) remove() error {
	var errs []error
	for i := len(r.written) - 1; i >= 0; i-- {
		path := r.written[i]
		s, ok := parseStamp(readHead(path))
		if !ok || !r.env.ours(s) {
			r.env.log.Info("split DNS: a resolver file was replaced; leaving it", "path", path)
		} else if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fileErr("remove "+path, err))
			continue
		}
		r.written = slices.Delete(r.written, i, i+1)
	}
	return errors.Join(errs...)
}

func (r *resolverDir) CleanupDNS() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active {
		return nil
	}
	return r.cleanup()
}

// cleanup removes the stale stamped files of the resolver directory (see
// CleanupDNS); r.mu is held.
func (r *resolverDir) cleanup() error {
	entries, err := os.ReadDir(r.env.ResolverDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fileErr("read "+r.env.ResolverDir, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(r.env.ResolverDir, e.Name())
		s, ok := parseStamp(readHead(path))
		if !ok || !r.env.stale(s) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fileErr("remove the stale "+path, err))
			continue
		}
		r.env.log.Info("split DNS: removed a resolver file left by a vpcvpn that did not stop cleanly", "path", path, "instance", s.instance, "pid", s.pid)
	}
	return errors.Join(errs...)
}

// createFile creates the file at path with contents b; it fails with
// fs.ErrExist if there is one.
func createFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path)
	}
	return err
}

// readHead returns the start of the regular file at path, or nil.
func readHead(path string) []byte {
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxResolverFile))
	return b
}
