//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Interface names inside the namespaces. Links are created directly inside
// the lab's namespaces, never in the machine's, so the names only have to be
// unique per namespace.
const (
	laptopLink     = "bastion0" // in laptop, towards the bastion
	bastionPubLink = "laptop0"  // in bastion, towards the laptop
	bastionVPCLink = "vpc0"     // in bastion, towards the VPC host
	vpcLink        = "eth0"     // in vpc, towards the bastion
)

// buildNetwork creates the namespaces, links, addresses and routes, and
// turns IP forwarding off in the bastion.
func (l *Lab) buildNetwork(ctx context.Context) error {
	for _, ns := range []string{l.Laptop, l.Bastion, l.VPC} {
		if err := l.addNamespace(ctx, ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"-n", l.Laptop, "link", "add", laptopLink, "type", "veth", "peer", "name", bastionPubLink, "netns", l.Bastion},
		{"-n", l.Bastion, "link", "add", bastionVPCLink, "type", "veth", "peer", "name", vpcLink, "netns", l.VPC},
		{"-n", l.Laptop, "addr", "add", LaptopAddr + "/24", "dev", laptopLink},
		{"-n", l.Bastion, "addr", "add", BastionAddr + "/24", "dev", bastionPubLink},
		{"-n", l.Bastion, "addr", "add", BastionVPCAddr + "/24", "dev", bastionVPCLink},
		{"-n", l.VPC, "addr", "add", VPCHostAddr + "/24", "dev", vpcLink},
		{"-n", l.Laptop, "link", "set", laptopLink, "up"},
		{"-n", l.Bastion, "link", "set", bastionPubLink, "up"},
		{"-n", l.Bastion, "link", "set", bastionVPCLink, "up"},
		{"-n", l.VPC, "link", "set", vpcLink, "up"},
		{"-n", l.VPC, "route", "add", "default", "via", BastionVPCAddr},
	}
	for _, args := range steps {
		if err := runIP(ctx, args...); err != nil {
			return err
		}
	}
	return l.InNamespace(l.Bastion, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0\n"), 0o644)
	})
}

// addNamespace creates ns with lo up and its own resolver files.
func (l *Lab) addNamespace(ctx context.Context, ns string) error {
	if err := runIP(ctx, "netns", "add", ns); err != nil {
		return err
	}
	l.mu.Lock()
	l.nsCreated = append(l.nsCreated, ns)
	l.mu.Unlock()
	if err := writeEtc(ns); err != nil {
		return err
	}
	return runIP(ctx, "-n", ns, "link", "set", "lo", "up")
}

// writeEtc writes /etc/netns/<ns>/{resolv.conf,hosts}, which `ip netns exec`
// bind-mounts over /etc, so DNS inside the lab never uses the machine's
// resolver. The name server is the bastion's public address, where nothing
// answers DNS: lookups fail fast instead of leaving the lab.
func writeEtc(ns string) error {
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { // another lab's Close may have removed /etc/netns
		return fmt.Errorf("lab: %w", err)
	}
	files := map[string]string{
		"resolv.conf": "# vpcvpn lab " + ns + "\nnameserver " + BastionAddr + "\noptions timeout:1 attempts:1\n",
		"hosts":       "127.0.0.1 localhost\n::1 localhost\n" + BastionAddr + " bastion\n" + VPCHostAddr + " vpc-host\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	return nil
}

// deleteNamespace kills every process left in ns, deletes it and its
// /etc/netns directory. A namespace that does not exist is not an error.
func deleteNamespace(ns string) error {
	killNamespacePIDs(ns)
	var errs []error
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
		errs = append(errs, runIP(context.Background(), "netns", "del", ns))
	}
	errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", ns)))
	os.Remove("/etc/netns") // only if empty: other labs may be using it
	return errors.Join(errs...)
}

// killNamespacePIDs sends SIGKILL to every process in ns. Deleting a
// namespace does not end its processes; they would keep it alive.
func killNamespacePIDs(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := parsePID(f); err == nil {
			killPID(pid)
		}
	}
}

func runIP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
