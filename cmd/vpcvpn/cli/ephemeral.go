package cli

// The ephemeral bastion of `vpcvpn up --ephemeral`: launch the current
// Amazon Linux 2023 image in a private subnet with the SSM instance
// profile, IMDSv2 required and no public address, tagged with its owner
// (the caller's ARN and unique id), the tool, an expiry and the launching
// process; wait
// until its agent is Online (over --via eice: until its sshd answers
// through the VPC's EC2 Instance Connect Endpoint); terminate it when the
// tunnel ends.
// `vpcvpn gc` (gc.go) finds what a crash left by these tags.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// Tags of an ephemeral bastion.
const (
	tagOwner   = "vpcvpn:owner"    // the caller's ARN
	tagOwnerID = "vpcvpn:owner-id" // the caller's unique id, IAM's ${aws:userid}
	tagTool    = "vpcvpn:tool"     // "vpcvpn"
	tagExpiry  = "vpcvpn:expiry"   // RFC 3339; gc terminates it after
	tagHost    = "vpcvpn:host"     // the launching machine's host name
	tagPID     = "vpcvpn:pid"      // the launching process there
	toolName   = "vpcvpn"
)

// Defaults of --ephemeral.
const (
	defaultInstanceType = "t4g.nano" // the smallest Graviton type
	defaultIdleStop     = 30 * time.Minute
	defaultLaunchWait   = 5 * time.Minute
	// ephemeralLifetime is how far the expiry tag lies ahead: a bastion
	// whose launching machine is lost is gc's after it. A running tunnel
	// moves it ahead every ephemeralRenew.
	ephemeralLifetime = 12 * time.Hour
	ephemeralRenew    = time.Hour
	// runInstancesTimeout bounds a RunInstances call that Ctrl-C does not
	// cut short.
	runInstancesTimeout = time.Minute
	// notFoundGrace is how long after a launch EC2 may still answer
	// InvalidInstanceID.NotFound for the new instance: its API is
	// eventually consistent, and a Describe or Terminate right after
	// RunInstances may not see the instance yet.
	notFoundGrace = time.Minute
	al2023Param   = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"
)

// ephemeralSpec is what --ephemeral launches.
type ephemeralSpec struct {
	Subnet       string // "" with VPC: one of its private subnets
	VPC          string
	InstanceType string
	Profile      string        // instance profile name or ARN; over EICE optional
	Groups       []string      // security groups (sg-...); none: the VPC's default group
	EICE         bool          // reached through an EC2 Instance Connect Endpoint, not SSM
	Wait         time.Duration // for Online, then give up
	IdleStop     time.Duration // without flows, then end the tunnel
}

// launcher reaches EC2, SSM and STS; method values as in inventory, tests
// fill it with fakes.
type launcher struct {
	callerIdentity     func(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
	getParameter       func(context.Context, *awsssm.GetParameterInput, ...func(*awsssm.Options)) (*awsssm.GetParameterOutput, error)
	runInstances       func(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	terminateInstances func(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	describeInstances  func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	createTags         func(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	instanceInfo       func(context.Context, *awsssm.DescribeInstanceInformationInput, ...func(*awsssm.Options)) (*awsssm.DescribeInstanceInformationOutput, error)
	subnets            subnetLister
	now                func() time.Time
	poll               time.Duration // between DescribeInstances while waiting
	backoff            time.Duration // first wait before a TerminateInstances is retried
	host               string
	pid                int
}

func newLauncher(cfg aws.Config) *launcher {
	e, s := ec2.NewFromConfig(cfg), awsssm.NewFromConfig(cfg)
	host, _ := os.Hostname()
	return &launcher{
		callerIdentity: sts.NewFromConfig(cfg).GetCallerIdentity, getParameter: s.GetParameter,
		runInstances: e.RunInstances, terminateInstances: e.TerminateInstances, describeInstances: e.DescribeInstances, createTags: e.CreateTags,
		instanceInfo: s.DescribeInstanceInformation, subnets: subnetLister{e.DescribeSubnets, e.DescribeRouteTables}, now: time.Now, poll: 2 * time.Second, backoff: 500 * time.Millisecond, host: host, pid: os.Getpid(),
	}
}

// errNoProfile refuses an SSM bastion without an instance profile.
var errNoProfile = errors.New("--ephemeral over SSM needs --instance-profile NAME: its SSM agent registers with that profile's role " +
	"(with the AmazonSSMManagedInstanceCore policy); create one or name it as instance_profile in the config file")

// identity is the caller as sts:GetCallerIdentity tells it, the owner of
// what it launches.
type identity struct {
	// ARN is the caller's: an IAM user's, or an assumed role's session
	// (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION).
	ARN string
	// UserID is its unique id, the value of IAM's policy variable
	// ${aws:userid}: an IAM user's id (AIDA...), or an assumed role's
	// ROLEID:SESSION (AROA...:alice@example.com). Unlike the ARN, it is
	// the same in a policy as in the tag, also through a role, so a
	// policy can tie a bastion to the person who launched it; and a role
	// or user deleted and created again under the same name gets another.
	UserID string
}

// owner returns the caller's identity, the owner tags of what it launches.
func (l *launcher) owner(ctx context.Context) (identity, error) {
	out, err := l.callerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return identity{}, fmt.Errorf("ephemeral: who am I (sts:GetCallerIdentity): %w", err)
	}
	id := identity{ARN: aws.ToString(out.Arn), UserID: aws.ToString(out.UserId)}
	if id.ARN == "" || id.UserID == "" {
		return identity{}, fmt.Errorf("ephemeral: sts:GetCallerIdentity answered without an ARN or a user id (%q, %q): is AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL) AWS's STS?", id.ARN, id.UserID)
	}
	return id, nil
}

// arm64Type reports whether an instance type is Graviton (t4g, m7gd, c6gn).
func arm64Type(itype string) bool {
	family, _, _ := strings.Cut(itype, ".")
	family = strings.TrimRight(family, "dne")
	return strings.HasSuffix(family, "g") && family != "g"
}

// launch starts the bastion spec describes for owner and returns its id.
func (l *launcher) launch(ctx context.Context, spec ephemeralSpec, owner identity) (string, error) {
	if spec.Profile == "" && !spec.EICE {
		return "", errNoProfile
	}
	if spec.Subnet == "" {
		return "", errors.New("--ephemeral needs --subnet subnet-… or --vpc vpc-… (the VPC to reach)")
	}
	itype := spec.InstanceType
	if itype == "" {
		itype = defaultInstanceType
	}
	arch := "x86_64"
	if arm64Type(itype) {
		arch = "arm64"
	}
	p, err := l.getParameter(ctx, &awsssm.GetParameterInput{Name: aws.String(al2023Param + arch)})
	if err != nil {
		return "", fmt.Errorf("ephemeral: find the Amazon Linux 2023 image (ssm:GetParameter %s): %w", al2023Param+arch, err)
	}
	var profile *ec2types.IamInstanceProfileSpecification // none: over EICE it may be left out
	switch {
	case strings.HasPrefix(spec.Profile, "arn:"):
		profile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(spec.Profile)}
	case spec.Profile != "":
		profile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(spec.Profile)}
	}
	tags := []ec2types.Tag{
		{Key: aws.String("Name"), Value: aws.String("vpcvpn ephemeral bastion")},
		{Key: aws.String(tagOwner), Value: aws.String(owner.ARN)},
		{Key: aws.String(tagOwnerID), Value: aws.String(owner.UserID)},
		{Key: aws.String(tagTool), Value: aws.String(toolName)},
		{Key: aws.String(tagExpiry), Value: aws.String(l.now().Add(ephemeralLifetime).UTC().Format(time.RFC3339))},
		{Key: aws.String(tagHost), Value: aws.String(l.host)},
		{Key: aws.String(tagPID), Value: aws.String(strconv.Itoa(l.pid))},
	}
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	// Not cancelled with ctx: a RunInstances cut short by Ctrl-C may still
	// launch, and its answer is the only place its id is told.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runInstancesTimeout)
	defer cancel()
	out, err := l.runInstances(rctx, &ec2.RunInstancesInput{
		ImageId: p.Parameter.Value, InstanceType: ec2types.InstanceType(itype), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken: aws.String(hex.EncodeToString(token)), IamInstanceProfile: profile,
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired, HttpEndpoint: ec2types.InstanceMetadataEndpointStateEnabled},
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(spec.Subnet), AssociatePublicIpAddress: aws.Bool(false), Groups: spec.Groups}},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}},
	})
	if err != nil {
		return "", launchError(err, spec, itype)
	}
	if len(out.Instances) != 1 {
		var errs []error
		for _, in := range out.Instances {
			errs = append(errs, l.terminate(aws.ToString(in.InstanceId)))
		}
		return "", errors.Join(append([]error{fmt.Errorf("ephemeral: RunInstances launched %d instances, want 1", len(out.Instances))}, errs...)...)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	if ctx.Err() != nil {
		if err := l.terminate(id); err != nil {
			return "", fmt.Errorf("ephemeral: launch interrupted (%w) after %s was launched: %w", ctx.Err(), id, err)
		}
		return "", fmt.Errorf("ephemeral: launch interrupted, %s terminated: %w", id, ctx.Err())
	}
	return id, nil
}

// launchError turns RunInstances' refusals into one line naming the fix.
func launchError(err error, spec ephemeralSpec, itype string) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("ephemeral: launch: %w", err)
	}
	msg := ae.ErrorMessage()
	switch code := ae.ErrorCode(); {
	case code == "UnauthorizedOperation" && strings.Contains(msg, "iam:PassRole"):
		return fmt.Errorf("ephemeral: you may not pass instance profile %s's role to EC2: allow iam:PassRole on it (%s)", spec.Profile, code)
	case code == "UnauthorizedOperation":
		return fmt.Errorf("ephemeral: you may not launch instances: allow ec2:RunInstances and ec2:CreateTags (%s)", code)
	case code == "InvalidSubnetID.NotFound":
		return fmt.Errorf("ephemeral: subnet %s does not exist in this region: check --subnet and --region", spec.Subnet)
	case code == "InstanceLimitExceeded" || code == "VcpuLimitExceeded":
		return fmt.Errorf("ephemeral: the account's instance quota is reached (%s): terminate an instance or raise the quota in Service Quotas", code)
	case strings.Contains(msg, "iamInstanceProfile"):
		return fmt.Errorf("ephemeral: instance profile %s does not exist: check --instance-profile (%s)", spec.Profile, code)
	case strings.Contains(msg, "architecture"):
		return fmt.Errorf("ephemeral: instance type %s does not run the image: choose another --instance-type (%s)", itype, code)
	}
	return fmt.Errorf("ephemeral: launch: %w", err)
}

// readiness tells whether a bastion in EC2 state is usable yet, with a
// status to show ("SSM agent Online"); an error gives up at once.
type readiness func(ctx context.Context, id, state string) (status string, ok bool, err error)

// waitOnline waits until id's SSM agent is Online (waitUsable).
func (l *launcher) waitOnline(ctx context.Context, id string, wait time.Duration, say func(format string, args ...any)) error {
	return l.waitUsable(ctx, id, wait, say, l.ssmReady,
		"not Online after %s (%s): check that the subnet reaches SSM (NAT or VPC endpoints) and the profile's role")
}

// ssmReady is the readiness of an SSM bastion: running, its agent Online.
func (l *launcher) ssmReady(ctx context.Context, id, state string) (string, bool, error) {
	ping, err := l.ping(ctx, id)
	return "SSM agent " + ping, state == "running" && ping == "Online", err
}

// waitUsable waits until id is running and ready says it is usable,
// telling say of each change with the time elapsed; after wait (or on
// ctx's end) it gives up, saying so with timeout (a format taking wait and
// the last status).
func (l *launcher) waitUsable(ctx context.Context, id string, wait time.Duration, say func(format string, args ...any), ready readiness, timeout string) error {
	if wait <= 0 {
		wait = defaultLaunchWait
	}
	start := l.now()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := ""
	for {
		state, err := l.state(ctx, id)
		if instanceNotFound(err) && l.now().Sub(start) < notFoundGrace {
			state, err = "pending", nil // not visible yet (notFoundGrace)
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
		status, ok, err := ready(ctx, id, state)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if now := fmt.Sprintf("%s, %s", state, status); now != last {
			say("ephemeral bastion %s: %s (%s)", id, now, l.now().Sub(start).Round(time.Second))
			last = now
		}
		switch {
		case state == "running" && ok:
			return nil
		case state != "" && state != "pending" && state != "running":
			return fmt.Errorf("ephemeral: bastion %s is %s before it was usable", id, state)
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("ephemeral: bastion %s "+timeout, id, wait, last)
			}
			return ctx.Err()
		case <-time.After(l.poll):
		}
	}
}

// state returns id's EC2 state.
func (l *launcher) state(ctx context.Context, id string) (string, error) {
	out, err := l.describeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return "", fmt.Errorf("ephemeral: describe %s: %w", id, err)
	}
	state := ""
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			state = string(in.State.Name)
		}
	}
	return state, nil
}

// ping returns id's SSM agent's ping status ("none" before it registers).
func (l *launcher) ping(ctx context.Context, id string) (string, error) {
	info, err := l.instanceInfo(ctx, &awsssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}}})
	if err != nil {
		return "", fmt.Errorf("ephemeral: SSM status of %s: %w", id, err)
	}
	ping := "none"
	for _, i := range info.InstanceInformationList {
		ping = string(i.PingStatus)
	}
	return ping, nil
}

// renew moves id's expiry tag ephemeralLifetime ahead of now, so that gc
// leaves the bastion of a tunnel running longer than that alone.
func (l *launcher) renew(ctx context.Context, id string) error {
	_, err := l.createTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{
		{Key: aws.String(tagExpiry), Value: aws.String(l.now().Add(ephemeralLifetime).UTC().Format(time.RFC3339))}}})
	if err != nil {
		return fmt.Errorf("ephemeral: renew the expiry of %s (ec2:CreateTags): %w", id, err)
	}
	return nil
}

// terminate ends id; a context of its own, so that it runs when the
// tunnel's was cancelled by Ctrl-C.
// An instance EC2 does not know yet (InvalidInstanceID.NotFound right after
// its launch) is asked again, with backoff, for notFoundGrace at most.
func (l *launcher) terminate(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), notFoundGrace)
	defer cancel()
	backoff := l.backoff
	for {
		_, err := l.terminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		if err == nil {
			return nil
		}
		if instanceNotFound(err) {
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, 8*time.Second)
				continue
			case <-ctx.Done():
			}
		}
		return fmt.Errorf("ephemeral: terminate %s (it keeps running and costing; `vpcvpn gc` retries): %w", id, err)
	}
}

// instanceNotFound reports whether err is EC2's InvalidInstanceID.NotFound.
func instanceNotFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidInstanceID.NotFound"
}
