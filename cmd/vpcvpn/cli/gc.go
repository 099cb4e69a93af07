package cli

// `vpcvpn gc`: terminate the ephemeral bastions this caller launched that
// nothing uses any more: past their expiry tag, or launched on this
// machine by a process that is gone. Instances of other callers, or not
// launched by vpcvpn, are never touched.
//
// The caller's are those tagged with its ARN and, when they carry one,
// with its unique id (ephemeral.go: identity). Both must match: the ARN
// alone is the same for a role or user deleted and created again under
// the same name, and through a role a policy can enforce only the id
// tag (${aws:userid}), so a bastion launched by someone else with this
// caller's ARN in its owner tag is not this caller's. The id alone
// would add nothing: an assumed role's id holds the session name as its
// ARN does. Bastions launched before the id tag existed have only the
// ARN, and are found by it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ucli "github.com/urfave/cli/v3"
)

func gcCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "gc",
		Usage: "terminate your ephemeral bastions that a crash left running",
		Description: "An ephemeral bastion (up --ephemeral) is terminated when its tunnel ends. One\n" +
			"left by a crash or a power loss is terminated here: only instances vpcvpn\n" +
			"launched for you (tag vpcvpn:owner is your ARN and vpcvpn:owner-id, where\n" +
			"set, your unique id), past their expiry or whose launching process on this\n" +
			"machine is gone.\n\n" +
			"   vpcvpn gc --profile dev",
		Flags: append(awsAccountFlags(),
			&ucli.BoolFlag{Name: "dry-run", Usage: "only list what would be terminated"},
		),
		Action: runGC,
	}
}

func runGC(ctx context.Context, cmd *ucli.Command) error {
	if cmd.Args().Len() > 0 {
		return fmt.Errorf("vpcvpn gc takes no arguments (got %q)", cmd.Args().First())
	}
	o := &upOptions{profile: cmd.String("profile"), region: cmd.String("region")}
	inv := currentInvoker()
	cfg, err := awsConfig(ctx, o, inv)
	if err != nil {
		return sudoHint(err, o, inv)
	}
	l := newLauncher(cfg)
	owner, err := l.owner(ctx)
	if err != nil {
		return sudoHint(err, o, inv)
	}
	_, err = l.gc(ctx, owner, cmd.Bool("dry-run"), processAlive, cmd.Root().Writer)
	return err
}

// leftover is an ephemeral bastion gc looked at.
type leftover struct {
	ID, State, Why string // Why: why it is garbage, "" when it is in use
	Terminated     bool   // gc terminated it
}

// gc terminates owner's leftover bastions (unless dryRun), reporting each
// to w; alive tells whether a process of this machine exists. An instance
// with owner's ARN but another owner id is not owner's: it is told, not
// returned.
func (l *launcher) gc(ctx context.Context, owner identity, dryRun bool, alive func(pid int) bool, w io.Writer) ([]leftover, error) {
	var found []leftover
	p := ec2.NewDescribeInstancesPaginator(describeFunc(l.describeInstances), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + tagOwner), Values: []string{owner.ARN}},
		{Name: aws.String("tag:" + tagTool), Values: []string{toolName}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("gc: list your ephemeral bastions: %w", err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				id, state := aws.ToString(in.InstanceId), string(in.State.Name)
				if other, ok := tagValue(in.Tags, tagOwnerID); ok && other != owner.UserID {
					fmt.Fprintf(w, "%s %s: owner id %s is not yours (%s), left alone\n", id, state, other, owner.UserID)
					continue
				}
				found = append(found, leftover{ID: id, State: state, Why: l.garbage(in, alive)})
			}
		}
	}
	var errs []error
	for i, f := range found {
		switch {
		case f.Why == "":
			fmt.Fprintf(w, "%s %s: in use, kept\n", f.ID, f.State)
		case dryRun:
			fmt.Fprintf(w, "%s %s: %s, would terminate\n", f.ID, f.State, f.Why)
		default:
			if err := l.terminate(f.ID); err != nil {
				fmt.Fprintf(w, "%s %s: %s, NOT terminated: %v\n", f.ID, f.State, f.Why, err)
				errs = append(errs, err)
				continue
			}
			found[i].Terminated = true
			fmt.Fprintf(w, "%s %s: %s, terminated\n", f.ID, f.State, f.Why)
		}
	}
	if len(found) == 0 {
		fmt.Fprintln(w, "no ephemeral bastions of yours")
	}
	return found, errors.Join(errs...)
}

// garbage says why in is a leftover, or "" when its tunnel may still use it.
func (l *launcher) garbage(in ec2types.Instance, alive func(int) bool) string {
	tags := map[string]string{}
	for _, t := range in.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if exp, err := time.Parse(time.RFC3339, tags[tagExpiry]); err != nil {
		return "no valid expiry tag"
	} else if l.now().After(exp) {
		return "expired at " + exp.Format(time.RFC3339)
	}
	if tags[tagHost] == l.host {
		if pid, err := strconv.Atoi(tags[tagPID]); err != nil || !alive(pid) {
			return "its vpcvpn (pid " + tags[tagPID] + ") is gone"
		}
	}
	return ""
}

// tagValue returns the value of tag key in tags, and whether it is there.
func tagValue(tags []ec2types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// describeFunc adapts a DescribeInstances method value to the paginator.
type describeFunc func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)

func (f describeFunc) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return f(ctx, in, opts...)
}

// processAlive reports whether process pid exists on this machine.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
