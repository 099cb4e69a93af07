package cli

// --target: an instance id is used as given (no EC2 call, no EC2
// permission); a Name tag value or tag:KEY=VALUE is resolved with
// ec2:DescribeInstances joined with ssm:DescribeInstanceInformation, and
// must select exactly one running instance whose SSM agent is online, or
// the person picks one of several on a terminal.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// targetSpec is --target as given: an instance id, or a tag whose value
// selects instances (Key "Name" for a plain name).
type targetSpec struct {
	ID         string
	Key, Value string
}

// isID reports whether s names the instance itself.
func (s targetSpec) isID() bool { return s.ID != "" }

// String is s as the person wrote it.
func (s targetSpec) String() string {
	switch {
	case s.ID != "":
		return s.ID
	case s.Key == "Name":
		return s.Value
	}
	return "tag:" + s.Key + "=" + s.Value
}

// filters selects s's instances in DescribeInstances.
func (s targetSpec) filters() []ec2types.Filter {
	if s.ID != "" {
		return []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{s.ID}}}
	}
	return []ec2types.Filter{{Name: aws.String("tag:" + s.Key), Values: []string{s.Value}}}
}

// idLike is what looks like an instance id, even a malformed one.
var idLike = regexp.MustCompile(`^m?i-[0-9a-fA-F]+$`)

// parseTargetSpec reads --target: an instance id, tag:KEY=VALUE or a Name.
func parseTargetSpec(s string) (targetSpec, error) {
	switch {
	case s == "":
		return targetSpec{}, errors.New("--via ssm needs the instance: add --target with its id (i-0123456789abcdef0), its Name tag or tag:KEY=VALUE")
	case targetPattern.MatchString(s):
		return targetSpec{ID: s}, nil
	case idLike.MatchString(s):
		return targetSpec{}, fmt.Errorf("invalid --target %q: an instance id is i- and 8 or 17 lowercase hex digits, such as i-0123456789abcdef0", s)
	case strings.HasPrefix(s, "tag:"):
		k, v, ok := strings.Cut(strings.TrimPrefix(s, "tag:"), "=")
		if !ok || k == "" || v == "" {
			return targetSpec{}, fmt.Errorf("invalid --target %q: give tag:KEY=VALUE, such as tag:Role=bastion", s)
		}
		return targetSpec{Key: k, Value: v}, nil
	case len(s) > 256 || strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.TrimSpace(s) == "":
		return targetSpec{}, fmt.Errorf("invalid --target %q: give an instance id, a Name tag value (up to 256 printable characters) or tag:KEY=VALUE", s)
	}
	return targetSpec{Key: "Name", Value: s}, nil
}

// chooseFunc asks the person which of several online instances spec
// selects to use.
type chooseFunc func(spec targetSpec, cands []instance) (instance, error)

// resolveTarget returns the instance spec names: for an id, the id alone
// (no call is made); otherwise the one usable instance spec selects, or the
// one choose picks (nil: nobody to ask). awsCfg's region is the one searched.
// Over via "eice" the instance needs no SSM agent: any running one with a
// private IPv4 address in a VPC will do (instance.usableVia).
func resolveTarget(ctx context.Context, awsCfg aws.Config, spec targetSpec, via string, choose chooseFunc) (instance, error) {
	if spec.isID() {
		return instance{ID: spec.ID}, nil
	}
	return resolveVia(ctx, newInventory(awsCfg), awsCfg.Region, spec, via, choose)
}

// resolveWith resolves spec to a bastion for --via ssm.
func resolveWith(ctx context.Context, inv inventory, region string, spec targetSpec, choose chooseFunc) (instance, error) {
	return resolveVia(ctx, inv, region, spec, "ssm", choose)
}

func resolveVia(ctx context.Context, inv inventory, region string, spec targetSpec, via string, choose chooseFunc) (instance, error) {
	var found []instance
	var err error
	if via == "eice" {
		found, err = inv.matchingEC2(ctx, spec)
	} else {
		found, err = inv.matching(ctx, spec)
	}
	if err != nil {
		return instance{}, fmt.Errorf("--target %s: %w", spec, err)
	}
	return pickTarget(spec, region, found, via, choose)
}

// pickTarget chooses among the instances spec selected, those usable
// via the transport.
func pickTarget(spec targetSpec, region string, found []instance, via string, choose chooseFunc) (instance, error) {
	if len(found) == 0 {
		return instance{}, &hintError{fmt.Sprintf("--target %s: no instance in %s has %s: list the candidates with `vpcvpn targets`, or check --profile and --region",
			spec, region, spec.tagText()), errNoMatch}
	}
	var usable []instance
	for _, in := range found {
		if in.usableVia(via) {
			usable = append(usable, in)
		}
	}
	sortInstances(usable)
	which, fix := "online", "start one, or fix its SSM agent"
	if via == "eice" {
		which, fix = "running", "start one"
	}
	switch {
	case len(usable) == 1:
		return usable[0], nil
	case len(usable) > 1 && choose != nil:
		return choose(spec, usable)
	case len(usable) > 1:
		return instance{}, fmt.Errorf("--target %s matches %d %s instances: %s: give one's id with --target",
			spec, len(usable), which, describeEach(usable, func(in instance) string {
				return fmt.Sprintf("%s in %s %s", in.label(), in.VPC, in.AZ)
			}))
	}
	sortInstances(found)
	return instance{}, fmt.Errorf("--target %s: no instance with %s can be the bastion: %s: %s",
		spec, spec.tagText(), describeEach(found, func(in instance) string {
			return in.label() + " " + in.unusableVia(via)
		}), fix)
}

// tagText is spec's tag for a sentence: "Name=bastion".
func (s targetSpec) tagText() string { return s.Key + "=" + s.Value }

func describeEach(list []instance, f func(instance) string) string {
	parts := make([]string, len(list))
	for i, in := range list {
		parts[i] = f(in)
	}
	return strings.Join(parts, "; ")
}

// sortInstances orders list by Name, then id; unnamed ones last.
func sortInstances(list []instance) {
	slices.SortStableFunc(list, func(a, b instance) int {
		if (a.Name == "") != (b.Name == "") {
			if a.Name == "" {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// deniedCodes are the error codes of a call the credentials may not make.
var deniedCodes = []string{"UnauthorizedOperation", "AccessDeniedException", "AccessDenied"}

var (
	// errDenied marks a call the credentials may not make.
	errDenied = errors.New("access denied")
	// errNoMatch marks a name or tag no instance has.
	errNoMatch = errors.New("no instance matches")
)

// deniedError is a call the credentials may not make, naming the
// permission it needs.
type deniedError struct {
	Permission string // e.g. ec2:DescribeVpcs
	Code       string // the service's error code
	err        error
}

func (e *deniedError) Error() string {
	return fmt.Sprintf("these AWS credentials may not call %s (%s)", e.Permission, e.Code)
}
func (e *deniedError) Unwrap() []error { return []error{errDenied, e.err} }

// credentialCodes are the error codes of credentials AWS does not take.
var credentialCodes = []string{"AuthFailure", "ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
	"UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch"}

// permissionHint names the permission a denied call needs, says that the
// credentials are expired or missing, or what call failed otherwise.
func permissionHint(err error, permission string) error {
	var ae smithy.APIError
	var sign *v4.SigningError
	switch {
	case errors.As(err, &ae) && slices.Contains(deniedCodes, ae.ErrorCode()):
		return &deniedError{Permission: permission, Code: ae.ErrorCode(), err: err}
	case errors.As(err, &ae) && slices.Contains(credentialCodes, ae.ErrorCode()), errors.As(err, &sign):
		return &hintError{"AWS credentials expired or missing: refresh them (for SSO: aws sso login)",
			errors.Join(ssm.ErrCredentialsExpired, err)}
	}
	return fmt.Errorf("%s: %w", permission, err)
}

// findTarget resolves r's --target and -N: the instance, its default user
// when --user was not given, and the ranges, which it shows. protect and
// names are the addresses -N must leave out.
func (r *upRun) findTarget(ctx context.Context, awsCfg aws.Config, protect []netip.Addr, names map[netip.Addr]string) error {
	o := r.opts
	if o.ephemeral != nil {
		if err := r.launchEphemeral(ctx, awsCfg); err != nil {
			return err
		}
	}
	in, err := resolveTarget(ctx, awsCfg, o.target, o.via, terminalChooser(ctx))
	if err != nil {
		return err
	}
	var plan autoNetPlan
	if o.autoNets {
		if plan, err = autoNets(ctx, awsCfg, in, o.cidrs, protect, names); err != nil {
			return err
		}
	}
	r.found.Lock()
	defer r.found.Unlock()
	if !o.target.isID() {
		if in.AgentVersion == "" {
			r.progress("--target %s: %s in %s %s", o.target, in.label(), in.VPC, in.AZ)
		} else {
			r.progress("--target %s: %s in %s %s, SSM agent %s on %s", o.target, in.label(), in.VPC, in.AZ, in.AgentVersion, orDash(in.Platform))
		}
		o.useInstance(in)
	}
	if o.autoNets {
		printAutoNets(r.out, in, plan)
		o.cidrs = plan.CIDRs
	}
	return nil
}

// useInstance makes in, found by name or tag, the bastion: its id, and the
// default user of its platform unless --user was given.
func (o *upOptions) useInstance(in instance) {
	o.host = in.ID
	if !o.userSet && in.EICUser != "" {
		o.user = in.EICUser
	}
}
