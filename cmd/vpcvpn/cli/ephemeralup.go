package cli

// `vpcvpn up --ephemeral`: the flags (and so the config keys ephemeral,
// subnet, instance_type, instance_profile, idle_stop), the launch before
// the tunnel connects, the idle stop, and the termination when the run
// ends for any reason (down, Ctrl-C, SIGTERM, idle, an error after the
// launch).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ucli "github.com/urfave/cli/v3"
)

// ephemeralPlaceholder stands for the instance --ephemeral launches until
// it is launched (findTarget).
const ephemeralPlaceholder = "i-00000000000000000"

func ephemeralFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "ephemeral", Usage: "launch the bastion (Amazon Linux 2023) for this tunnel and terminate it when the tunnel ends; needs --subnet, and over SSM --instance-profile"},
		&ucli.StringFlag{Name: "subnet", Usage: "--ephemeral: the private `SUBNET` (subnet-...) to launch the bastion in"},
		&ucli.StringFlag{Name: "vpc", Usage: "--ephemeral: launch the bastion in a private subnet of `VPC` (vpc-...); with --subnet, the subnet must be in it"},
		&ucli.StringFlag{Name: "instance-type", Value: defaultInstanceType, Usage: "--ephemeral: the bastion's instance `TYPE`"},
		&ucli.StringFlag{Name: "instance-profile", Usage: "--ephemeral: the instance `PROFILE` (name or ARN) whose role lets its SSM agent register (AmazonSSMManagedInstanceCore); optional with --via eice"},
		&ucli.DurationFlag{Name: "idle-stop", Value: defaultIdleStop, Usage: "--ephemeral: end the tunnel and terminate the bastion after `D` without connections"},
		&ucli.StringSliceFlag{Name: "security-group", Usage: "--ephemeral: the bastion's security `GROUP` (sg-...; repeat or separate with commas), instead of the VPC's default group; over --via eice one that admits port 22 from the endpoint's group"},
		&ucli.DurationFlag{Name: "launch-timeout", Value: defaultLaunchWait, Usage: "--ephemeral: give up (and terminate it) when the bastion is not usable (SSM Online, or over EICE its sshd answering) after `D`"},
	}
}

// parseEphemeral reads --ephemeral and its flags into o.ephemeral.
func (o *upOptions) parseEphemeral(cmd *ucli.Command) error {
	if !cmd.Bool("ephemeral") {
		for _, f := range []string{"subnet", "vpc", "instance-type", "instance-profile", "security-group", "idle-stop", "launch-timeout"} {
			if cmd.IsSet(f) {
				return fmt.Errorf("--%s applies to --ephemeral only", f)
			}
		}
		return nil
	}
	switch {
	case cmd.String("target") != "":
		return errors.New("--ephemeral launches the bastion, so it takes no --target")
	case cmd.String("ssh") != "" || cmd.String("via") == "ssh":
		return errors.New("--ephemeral reaches its bastion through AWS, over SSM (the default) or --via eice: drop --ssh")
	case cmd.String("subnet") == "" && cmd.String("vpc") == "":
		return errors.New("--ephemeral needs --subnet subnet-… or --vpc vpc-…: where to launch the bastion (a private subnet that reaches SSM through a NAT or VPC endpoints)")
	case cmd.String("vpc") != "" && !strings.HasPrefix(cmd.String("vpc"), "vpc-"):
		return fmt.Errorf("invalid --vpc %q: give a VPC id such as vpc-0123456789abcdef0", cmd.String("vpc"))
	case cmd.String("subnet") != "" && !strings.HasPrefix(cmd.String("subnet"), "subnet-"):
		return fmt.Errorf("invalid --subnet %q: give a subnet id such as subnet-0123456789abcdef0", cmd.String("subnet"))
	case cmd.String("instance-profile") == "" && cmd.String("via") != "eice":
		return errNoProfile
	case cmd.Duration("idle-stop") < minEphemeralDuration || cmd.Duration("launch-timeout") < minEphemeralDuration:
		return fmt.Errorf("--idle-stop and --launch-timeout take a duration of at least %s, such as 30m", minEphemeralDuration)
	case cmd.Bool("strict-host-key"):
		return errors.New("--ephemeral launches a new instance whose host key no known_hosts file can hold yet: drop --strict-host-key (AWS vouches for which instance the tunnel reaches)")
	}
	var groups []string
	for _, g := range cmd.StringSlice("security-group") {
		for g := range strings.SplitSeq(g, ",") {
			if g = strings.TrimSpace(g); !strings.HasPrefix(g, "sg-") {
				return fmt.Errorf("invalid --security-group %q: give a security group id such as sg-0123456789abcdef0", g)
			}
			groups = append(groups, g)
		}
	}
	o.ephemeral = &ephemeralSpec{Subnet: cmd.String("subnet"), VPC: cmd.String("vpc"), InstanceType: cmd.String("instance-type"),
		Profile: cmd.String("instance-profile"), Groups: groups, EICE: cmd.String("via") == "eice", Wait: cmd.Duration("launch-timeout"), IdleStop: cmd.Duration("idle-stop")}
	return nil
}

// minEphemeralDuration is the least --idle-stop and --launch-timeout: the
// idle check runs every tenth of --idle-stop, and a bastion boots in
// seconds at best.
const minEphemeralDuration = time.Second

// ephemeralRun is the bastion a run launched.
type ephemeralRun struct {
	mu sync.Mutex
	l  *launcher
	id string // "" until launched, again once terminated
}

// launchEphemeral launches the bastion, waits until it is Online and makes
// it the target; the run's end terminates it (endEphemeral).
func (r *upRun) launchEphemeral(ctx context.Context, awsCfg aws.Config) error {
	o := r.opts
	l := newLauncher(awsCfg)
	owner, err := l.owner(ctx)
	if err != nil {
		return err
	}
	// What a crash of an earlier run left, as vpcvpn gc.
	found, err := l.gc(ctx, owner, false, processAlive, io.Discard)
	if err != nil {
		r.log.Warn("ephemeral: leftover bastions not cleaned up (vpcvpn gc retries)", "err", err)
	}
	for _, f := range found {
		switch {
		case f.Terminated:
			r.progress("terminated leftover ephemeral bastion %s: %s", f.ID, f.Why)
		case f.Why != "":
			r.progress("leftover ephemeral bastion %s (%s) not terminated: `vpcvpn gc` retries", f.ID, f.Why)
		}
	}
	if err := l.subnets.chooseSubnet(ctx, o.ephemeral); err != nil {
		return err
	}
	if o.ephemeral.EICE {
		if err := checkEICE(ctx, awsCfg, o.ephemeral, o.eiceID); err != nil {
			return err
		}
	}
	id, err := l.launch(ctx, *o.ephemeral, owner)
	if err != nil {
		return err
	}
	r.bastion.mu.Lock()
	r.bastion.l, r.bastion.id = l, id
	r.bastion.mu.Unlock()
	r.progress("launched ephemeral bastion %s (%s in %s), owner %s (id %s); it is terminated when the tunnel ends", id,
		o.ephemeral.InstanceType, o.ephemeral.Subnet, owner.ARN, owner.UserID)
	wait := l.waitOnline
	if o.ephemeral.EICE {
		wait = func(ctx context.Context, id string, d time.Duration, say func(string, ...any)) error {
			return l.waitUsable(ctx, id, d, say, eiceReady(awsCfg, o.eiceID, o.port),
				"not answering SSH through an EC2 Instance Connect Endpoint after %s (%s): launch it with --security-group sg-… admitting port 22 from the endpoint's security group (without one it gets the VPC's default group)")
		}
	}
	if err := wait(ctx, id, o.ephemeral.Wait, r.progress); err != nil {
		return err
	}
	r.found.Lock()
	o.target, o.host = targetSpec{ID: id}, id
	r.found.Unlock()
	go r.idleStop(ctx, o.ephemeral.IdleStop)
	go r.renewEphemeral(ctx, l, id)
	return nil
}

// renewEphemeral keeps the bastion's expiry ahead while the run lasts.
func (r *upRun) renewEphemeral(ctx context.Context, l *launcher, id string) {
	tick := time.NewTicker(ephemeralRenew)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := l.renew(ctx, id); err != nil {
			r.log.Warn("ephemeral bastion's expiry not renewed: vpcvpn gc may terminate it after the old one", "err", err)
		}
	}
}

// endEphemeral terminates the bastion the run launched, if any.
func (r *upRun) endEphemeral() {
	b := &r.bastion
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.id == "" {
		return
	}
	if err := b.l.terminate(b.id); err != nil {
		r.progress("%v", err)
		return
	}
	r.progress("terminated ephemeral bastion %s", b.id)
	b.id = ""
}

// errIdleStop ends a run whose ephemeral bastion went unused.
var errIdleStop = errors.New("idle stop")

// idleStop ends the run once no connection was open or started for idle.
func (r *upRun) idleStop(ctx context.Context, idle time.Duration) {
	tick := time.NewTicker(min(idle/10, 30*time.Second))
	defer tick.Stop()
	var total uint64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		eng := r.eng.Load()
		if eng == nil {
			last = time.Now()
			continue
		}
		if t := eng.Traffic(); t.FlowsOpen > 0 || t.FlowsTotal != total {
			total, last = t.FlowsTotal, time.Now()
			continue
		}
		if time.Since(last) >= idle {
			r.progress("no connection for %s (--idle-stop): ending the tunnel", idle)
			r.stop(errIdleStop)
			return
		}
	}
}
