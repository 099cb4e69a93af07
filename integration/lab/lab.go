//go:build linux

package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// Addresses of the lab. They are fixed: namespaces keep labs apart.
const (
	LaptopAddr     = "198.18.0.1"   // laptop's address on the "public" link
	BastionAddr    = "198.18.0.2"   // bastion's public address; sshd listens here
	BastionVPCAddr = "10.77.0.1"    // bastion's address inside the VPC
	VPCHostAddr    = "10.77.0.10"   // the VPC host: PostgreSQL and test servers
	VPCCIDR        = "10.77.0.0/16" // the whole VPC
	PublicCIDR     = "198.18.0.0/24"
	UnusedAddr     = "198.18.0.99" // on the laptop's link, answered by nobody
	PostgresPort   = 5432
	SSHUser        = "root"
	Database       = "lab"
)

// DefaultPrefix starts the name of every lab's namespaces and temporary
// directory unless Options.Prefix says otherwise.
const DefaultPrefix = "vlab"

// Options configure New. The zero value is a full lab.
type Options struct {
	// Prefix starts every name the lab creates; a random suffix makes each
	// lab unique. Default DefaultPrefix.
	Prefix string
	// NoPostgres skips starting PostgreSQL in the vpc namespace.
	NoPostgres bool
	// DNS starts the lab's DNS servers (dns.go): the VPC resolver with
	// private names, and a public resolver for the laptop.
	DNS bool
	// AWS, when set, also starts the emulated AWS side (aws.go) and lets
	// sshd accept the keys pushed through it.
	AWS *AWSOptions
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// Lab is a running lab. Its exported fields are read-only.
type Lab struct {
	ID      string // unique prefix of every name, e.g. "vlab3f9c"
	Laptop  string // namespace where vpcvpn runs
	Bastion string // namespace of sshd
	VPC     string // namespace of the VPC host
	Dir     string // temporary directory with keys, configs, logs

	SSH SSHInfo // how to reach the bastion's sshd
	AWS AWSInfo // how to reach the emulated AWS side; zero without Options.AWS
	DNS DNSInfo // the DNS servers; zero without Options.DNS

	log      *slog.Logger
	launched *instances // the launched instances it runs; nil without the real agent

	mu        sync.Mutex // guards following
	procs     []*Process
	closers   []func() error
	nsCreated []string
	closed    bool

	closeOnce sync.Once
	closeErr  error
}

// New builds a lab: namespaces, links, sshd and (unless opts.NoPostgres)
// PostgreSQL. On error everything already created is removed again.
func New(ctx context.Context, opts Options) (*Lab, error) {
	if reason := Missing(); reason != "" {
		return nil, fmt.Errorf("lab: %s", reason)
	}
	l, err := newLab(opts)
	if err != nil {
		return nil, err
	}
	if err := l.build(ctx, opts); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func newLab(opts Options) (*Lab, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	var b [3]byte
	rand.Read(b[:])
	id := prefix + hex.EncodeToString(b[:])
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Lab{
		ID:      id,
		Laptop:  id + "-laptop",
		Bastion: id + "-bastion",
		VPC:     id + "-vpc",
		Dir:     filepath.Join(os.TempDir(), id),
		log:     log.With("lab", id),
	}
	if err := writeOwner(l.Dir); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lab) build(ctx context.Context, opts Options) error {
	if err := l.buildNetwork(ctx); err != nil {
		return err
	}
	if opts.AWS != nil {
		if err := l.installAWS(opts.AWS); err != nil {
			return err
		}
	}
	if err := l.startSSHD(ctx); err != nil {
		return err
	}
	if opts.AWS != nil {
		if err := l.startAWS(ctx, opts.AWS); err != nil {
			return err
		}
	}
	if opts.DNS {
		if err := l.startDNS(ctx); err != nil {
			return err
		}
	}
	if opts.NoPostgres {
		return nil
	}
	return l.startPostgres(ctx)
}

// Path returns name inside the lab's temporary directory.
func (l *Lab) Path(name string) string { return filepath.Join(l.Dir, name) }

// onClose registers f to run at Close, before processes are stopped and
// namespaces deleted. Functions run in reverse order of registration.
func (l *Lab) onClose(f func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, f)
}

// Close stops every process the lab started (and any other process left in
// its namespaces), deletes the namespaces, their /etc/netns directories and
// the temporary directory. It is idempotent.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	l.mu.Lock()
	l.closed = true
	closers, procs, nss := l.closers, l.procs, l.nsCreated
	l.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
	for _, ns := range nss {
		errs = append(errs, deleteNamespace(ns))
	}
	errs = append(errs, os.RemoveAll(l.Dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: close %s: %w", l.ID, err)
	}
	return nil
}
