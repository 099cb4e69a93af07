//go:build linux

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

const ifName = "vpcvpn0"

type demo struct {
	lab *lab.Lab
	vpn *lab.VPCVPN
	in  *lab.Instance // the running `vpcvpn up`, after connect
}

func (d *demo) run(ctx context.Context) error {
	steps := []func(context.Context) error{d.explainLab, d.showNoRoute, d.connect, d.query, d.explainSSM, d.status, d.disconnect}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
	return nil
}

func (d *demo) explainLab(ctx context.Context) error {
	l := d.lab
	say("The lab is up:")
	fmt.Printf("    %-22s %s, where vpcvpn runs, like your laptop\n", l.Laptop, lab.LaptopAddr)
	fmt.Printf("    %-22s %s (public side) and %s (VPC side): the EC2 instance %s,\n", l.Bastion, lab.BastionAddr, lab.BastionVPCAddr, lab.InstanceID)
	fmt.Printf("    %-22s with OpenSSH sshd and IP forwarding OFF. vpcvpn never connects to its port 22.\n", "")
	fmt.Printf("    %-22s Beside it awsemu, an emulated AWS: SSM and EC2 Instance Connect at %s.\n", "", l.AWS.Endpoint)
	if l.AWS.Agent == lab.AgentReal {
		fmt.Printf("    %-22s The instance runs AWS's real SSM agent, which connects to awsemu as to AWS\n", "")
		fmt.Printf("    %-22s and relays sessions to sshd (it paces itself: 1 KiB, then 1 ms).\n", "")
	} else {
		fmt.Printf("    %-22s awsemu also plays the instance's SSM agent, relaying sessions to sshd (1 KiB, 1 ms pacing).\n", "")
	}
	fmt.Printf("    %-22s %s in the VPC %s: PostgreSQL on port %d; the VPC resolver %s\n", l.VPC, lab.VPCHostAddr, lab.VPCCIDR, lab.PostgresPort, lab.VPCResolverAddr)
	fmt.Printf("    %-22s knows private names such as %s.\n", "", lab.RDSName)
	fmt.Printf("    The instance's host key is %s.\n", l.SSH.Fingerprint)
	return nil
}

func (d *demo) showNoRoute(ctx context.Context) error {
	l := d.lab
	say("The laptop's routes. There is none to %s, so the database is out of reach:", lab.VPCCIDR)
	if err := d.showRoutes(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := l.Query(cctx, "select 1")
	if err == nil {
		return fmt.Errorf("the laptop reached the VPC without vpcvpn: the lab is broken")
	}
	show("$ psql -h " + lab.VPCHostAddr + " -c 'select 1'\n" + firstLine(out))
	return nil
}

func (d *demo) connect(ctx context.Context) error {
	args := d.vpn.UpArgsSSM(ifName)
	say("vpcvpn reaches AWS through the standard AWS settings only (no test-only code path):")
	for _, kv := range d.lab.AWS.Env() {
		if k, _, _ := strings.Cut(kv, "="); k == "AWS_SECRET_ACCESS_KEY" {
			kv = k + "=(the lab's, not shown)"
		}
		show(kv)
	}
	say("Starting vpcvpn in the laptop namespace, with no key (no -i):\n    %s %s", d.vpn.Bin, strings.Join(args, " "))
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	in, err := d.vpn.Start(cctx, args...)
	if err != nil {
		return err
	}
	d.in = in
	show(in.Stderr())
	say("vpcvpn created %s and routed %s to it; everything else is untouched:", ifName, lab.VPCCIDR)
	return d.showRoutes(ctx)
}

func (d *demo) query(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	say("An ordinary psql on the laptop now reaches PostgreSQL at %s:", lab.VPCHostAddr)
	out, err := d.lab.Query(cctx, "select inet_client_addr(), version()")
	if err != nil {
		return err
	}
	show("$ psql -h " + lab.VPCHostAddr + " -c 'select inet_client_addr(), version()'\n" + out)
	client, _, _ := strings.Cut(out, "|")
	if client != lab.BastionVPCAddr {
		return fmt.Errorf("PostgreSQL saw client %q, want the bastion %s", client, lab.BastionVPCAddr)
	}
	say("And by its private name, which only the VPC's resolver knows: vpcvpn answers the\n"+
		"    laptop's DNS queries for %s names through the tunnel.", "rds.amazonaws.com")
	q := "select current_database(), inet_server_addr()"
	out, err = d.lab.Psql(cctx, d.lab.Laptop, lab.RDSName, lab.PostgresPort, "", q)
	if err != nil {
		return err
	}
	show("$ psql -h " + lab.RDSName + " -c '" + q + "'\n" + out)
	say("PostgreSQL saw the connections come from %s: the instance's sshd opened them for us,\n"+
		"    carried inside the one SSH connection from the laptop. No packet was routed by the instance.", client)
	return nil
}

func (d *demo) status(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := d.vpn.Run(cctx, "status", "--name", ifName)
	if err != nil {
		return err
	}
	say("vpcvpn status:")
	show(res.Stdout + res.Stderr)
	if res.ExitCode != 0 {
		return fmt.Errorf("vpcvpn status exited with %d", res.ExitCode)
	}
	return nil
}

func (d *demo) disconnect(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	say("vpcvpn down: the interface and the route go away.")
	res, err := d.vpn.Run(cctx, "down", "--name", ifName)
	if err != nil {
		return err
	}
	show(res.Stdout + res.Stderr)
	if res.ExitCode != 0 {
		return fmt.Errorf("vpcvpn down exited with %d", res.ExitCode)
	}
	select {
	case <-d.in.Done():
	case <-cctx.Done():
		return fmt.Errorf("vpcvpn up still running after down: %w", cctx.Err())
	}
	show(fmt.Sprintf("vpcvpn up exited with code %d", d.in.Result().ExitCode))
	return d.showRoutes(ctx)
}

func (d *demo) showRoutes(ctx context.Context) error {
	out, err := d.lab.Exec(ctx, d.lab.Laptop, "ip", "route")
	if err != nil {
		return err
	}
	show("$ ip route   (in the laptop namespace)\n" + out)
	return nil
}

func splitLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func firstLine(s string) string { return splitLines(s)[0] }
