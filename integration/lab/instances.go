//go:build linux

package lab

// The machines behind RunInstances. With the real SSM agent, the lab boots
// every instance the emulator launches as a lab instance of its own: once
// the emulator says it is running, a network namespace holding its private
// address (ip netns <lab>-<instance id>), its own sshd with a new host key
// and AWS's real SSM agent in PID and mount namespaces of its own, which
// learns who it is from the instance metadata and registers, as on EC2.
// When the emulator says it is shutting down, the lab stops them and
// removes the namespace. The lab learns of launches by polling the
// emulator's list of launched instances (awsemu launched.go), never
// through the product.
//
// A namespace per instance, not a second agent in the bastion's: the agent
// knows its instance only from the metadata at 169.254.169.254, which
// answers by the caller's address, and its sshd must be its own (its host
// key, its keys pushed for its id), so a launched instance needs an
// address of its own; a namespace and two veth pairs cost a few
// milliseconds. Its links:
//
//	eth0 -- VPC namespace      its private address; the VPC host answers on-link
//	aws0 -- bastion namespace  the emulator (AWS's endpoints) and the instance
//	                           metadata, reached from its private address
//
// No namespace forwards: the VPC and bastion namespaces route the
// instance's /32 to their end of its link.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/awsemu"
)

// launchPoll is how often the lab asks the emulator for launched instances.
const launchPoll = 200 * time.Millisecond

// bootedInstance is a launched instance the lab runs.
type bootedInstance struct {
	awsemu.LaunchedInstance
	ns, root    string // namespace, directory
	link        string // name of its links' far ends, in the VPC and bastion namespaces
	sshd, agent *Process
}

// instances runs the launched instances (see the file comment): New →
// run (one goroutine, polling) → close.
type instances struct {
	lab      *Lab
	agentDir string
	cancel   context.CancelFunc
	done     chan struct{}

	mu     sync.Mutex // guards booted
	booted map[string]*bootedInstance
}

// startInstances boots launched instances with the real agent in agentDir
// from now until the lab closes.
func (l *Lab) startInstances(agentDir string) {
	ctx, cancel := context.WithCancel(context.Background())
	in := &instances{lab: l, agentDir: agentDir, cancel: cancel, done: make(chan struct{}), booted: map[string]*bootedInstance{}}
	l.launched = in
	l.onClose(func() error {
		in.cancel()
		<-in.done
		return nil
	})
	go in.run(ctx)
}

// run polls the emulator and boots or shuts down instances until ctx ends.
func (in *instances) run(ctx context.Context) {
	defer close(in.done)
	l := in.lab
	c, err := l.AWSClient(l.Bastion)
	if err != nil {
		l.log.Error("launched instances", "err", err)
		return
	}
	defer c.CloseIdleConnections()
	tick := time.NewTicker(launchPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		list, err := listLaunched(ctx, c, l.AWS.Endpoint)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("launched instances", "err", err)
			}
			continue
		}
		for _, li := range list {
			in.reconcile(ctx, li)
		}
	}
}

// listLaunched asks the emulator for its launched instances.
func listLaunched(ctx context.Context, c *http.Client, endpoint string) ([]awsemu.LaunchedInstance, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_awsemu/admin/instances", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET launched instances: %s", resp.Status)
	}
	var list []awsemu.LaunchedInstance
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("launched instances: %w", err)
	}
	return list, nil
}

// reconcile boots li once it is running and shuts it down once it is
// shutting down or terminated.
func (in *instances) reconcile(ctx context.Context, li awsemu.LaunchedInstance) {
	in.mu.Lock()
	b := in.booted[li.ID]
	up := b != nil && b.ns != ""
	in.mu.Unlock()
	l := in.lab
	switch {
	case b == nil && li.State == "running":
		b = &bootedInstance{LaunchedInstance: li, ns: l.ID + "-" + li.ID, root: l.Path(filepath.Join("instances", li.ID)),
			link: "e" + li.ID[len(li.ID)-10:]} // unique in the VPC and bastion namespaces
		in.mu.Lock()
		in.booted[li.ID] = b
		in.mu.Unlock()
		if err := in.boot(ctx, b); err != nil {
			l.log.Error("instance boot", "instance", li.ID, "err", err)
			return
		}
		l.log.Info("instance booted", "instance", li.ID, "ip", li.PrivateIP, "namespace", b.ns)
	case up && (li.State == "shutting-down" || li.State == "terminated"):
		in.shutdown(b)
		l.log.Info("instance shut down", "instance", li.ID)
	}
}

// boot gives b its namespace and links, then starts its sshd and agent.
func (in *instances) boot(ctx context.Context, b *bootedInstance) error {
	l := in.lab
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := l.addNamespace(ctx, b.ns); err != nil {
		return err
	}
	ip := b.PrivateIP
	steps := [][]string{
		{"-n", b.ns, "link", "add", "eth0", "type", "veth", "peer", "name", b.link, "netns", l.VPC},
		{"-n", b.ns, "link", "add", "aws0", "type", "veth", "peer", "name", b.link, "netns", l.Bastion},
		{"-n", b.ns, "addr", "add", ip + "/32", "dev", "eth0"},
		{"-n", b.ns, "link", "set", "eth0", "up"},
		{"-n", b.ns, "link", "set", "aws0", "up"},
		{"-n", l.VPC, "link", "set", b.link, "up"},
		{"-n", l.Bastion, "link", "set", b.link, "up"},
		{"-n", b.ns, "route", "add", "default", "dev", "eth0", "src", ip},
		{"-n", b.ns, "route", "add", BastionAddr + "/32", "dev", "aws0", "src", ip},
		{"-n", b.ns, "route", "add", IMDSAddr + "/32", "dev", "aws0", "src", ip},
		{"-n", l.VPC, "route", "add", ip + "/32", "dev", b.link},
		{"-n", l.Bastion, "route", "add", ip + "/32", "dev", b.link, "src", BastionAddr},
	}
	for _, args := range steps {
		if err := runIP(ctx, args...); err != nil {
			return err
		}
	}
	if err := in.startSSHD(ctx, b); err != nil {
		return err
	}
	p, err := l.runAgent(b.ns, b.root, "ssm-agent-"+b.ID, in.agentDir)
	if err != nil {
		return err
	}
	b.agent = p
	return nil
}

// startSSHD starts b's sshd with a host key of its own, accepting the
// lab's key and the keys pushed for b, and waits until it listens.
func (in *instances) startSSHD(ctx context.Context, b *bootedInstance) error {
	l := in.lab
	if err := keygen(ctx, filepath.Join(b.root, "ssh_host_ed25519_key")); err != nil {
		return err
	}
	if err := copyFile(l.Path("authorized_keys"), filepath.Join(b.root, "authorized_keys")); err != nil {
		return err
	}
	conf := filepath.Join(b.root, "sshd_config")
	text := append(fmt.Appendf(nil, sshdConfig, b.root, b.PrivateIP), l.sshdAWSConfig(b.ID)...)
	if err := os.WriteFile(conf, text, 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if b.sshd, err = l.Start(b.ns, "sshd-"+b.ID, 0, sshd, "-D", "-e", "-f", conf); err != nil {
		return err
	}
	return poll(ctx, 10*time.Second, "sshd of "+b.ID, b.sshd, l.listenCheck(b.ns, hostPort(b.PrivateIP, 22)))
}

// shutdown stops b's agent and sshd and removes its namespace, and with it
// its links.
func (in *instances) shutdown(b *bootedInstance) {
	for _, p := range []*Process{b.agent, b.sshd} {
		if p != nil {
			p.Stop()
		}
	}
	in.mu.Lock()
	ns := b.ns
	b.ns = ""
	in.mu.Unlock()
	if err := deleteNamespace(ns); err != nil {
		in.lab.log.Warn("instance shutdown", "instance", b.ID, "err", err)
	}
}

// LaunchedNamespace returns the namespace of the launched instance id
// while the lab runs it (booted, not shut down), else "".
func (l *Lab) LaunchedNamespace(id string) string {
	if l.launched == nil {
		return ""
	}
	l.launched.mu.Lock()
	defer l.launched.mu.Unlock()
	if b := l.launched.booted[id]; b != nil {
		return b.ns
	}
	return ""
}

// WaitLaunchedDown waits until the lab has shut the launched instance id
// down: its agent and sshd stopped, its namespace gone.
func (l *Lab) WaitLaunchedDown(ctx context.Context, id string) error {
	ns := l.ID + "-" + id
	return poll(ctx, 30*time.Second, "instance "+id+" to shut down", nil, func(context.Context) error {
		if l.LaunchedNamespace(id) != "" {
			return errors.New("still running")
		}
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			return errors.New("namespace " + ns + " still there")
		}
		return nil
	})
}
