package cli

// -N (--auto-nets, sshuttle's flag): route the bastion's VPC. Its CIDR
// blocks (ec2:DescribeVpcs), and the destinations of its subnet's route
// table (else the VPC's main one; ec2:DescribeRouteTables) that lead to a
// peering connection or a transit gateway; never a default route, nor a
// range that would capture an address that must stay out of the tunnel
// (the AWS endpoints).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcvpn/vpcvpn/routing"
)

// netCandidate is a range -N considers and where it leads.
type netCandidate struct {
	CIDR string
	Via  string // "vpc-…", "peering pcx-…", "transit gateway tgw-…"
}

// autoNet is a range -N routes.
type autoNet struct {
	Prefix netip.Prefix
	Via    string
}

// skippedNet is a range -N leaves out, and why.
type skippedNet struct {
	CIDR, Via, Reason string
}

// autoNetPlan is what -N found for a bastion.
type autoNetPlan struct {
	VPC     string
	Nets    []autoNet      // routed, besides the CIDRs given
	Skipped []skippedNet   // left out
	CIDRs   []netip.Prefix // what to route: the CIDRs given and Nets, none inside another
}

// autoNets finds the ranges of in's VPC to route besides given, leaving out
// every range that contains one of protect (names says what each is). An
// instance known only by its id is looked up first.
func autoNets(ctx context.Context, awsCfg aws.Config, in instance, given []netip.Prefix, protect []netip.Addr, names map[netip.Addr]string) (autoNetPlan, error) {
	return autoNetsWith(ctx, newInventory(awsCfg), in, given, protect, names)
}

func autoNetsWith(ctx context.Context, inv inventory, in instance, given []netip.Prefix, protect []netip.Addr, names map[netip.Addr]string) (autoNetPlan, error) {
	if in.VPC == "" {
		found, err := inv.ec2Instances(ctx, targetSpec{ID: in.ID}.filters())
		if err != nil {
			return autoNetPlan{}, autoNetsErr(in, err)
		}
		if len(found) == 0 || found[0].VPC == "" {
			return autoNetPlan{}, fmt.Errorf("-N: EC2 knows no VPC of %s: give the ranges to route as CIDRs instead", in.ID)
		}
		in = found[0]
	}
	cands, err := inv.vpcBlocks(ctx, in.VPC)
	if err != nil {
		return autoNetPlan{}, autoNetsErr(in, err)
	}
	routes, err := inv.vpcRoutes(ctx, in.VPC, in.Subnet)
	if err != nil {
		return autoNetPlan{}, autoNetsErr(in, err)
	}
	plan := planAutoNets(append(cands, routes...), given, protect, names)
	plan.VPC = in.VPC
	if len(plan.CIDRs) == 0 {
		return plan, fmt.Errorf("-N found no range to route in %s of %s: give the ranges as CIDRs", in.VPC, in.ID)
	}
	return plan, nil
}

// autoNetsErr says which permission -N lacks, and what to do instead.
func autoNetsErr(in instance, err error) error {
	var de *deniedError
	if errors.As(err, &de) {
		return &hintError{fmt.Sprintf("-N needs %s, which these AWS credentials may not call (%s): give the VPC's ranges as CIDRs instead, e.g. vpcvpn up 10.0.0.0/16 --target %s",
			de.Permission, de.Code, in.ID), err}
	}
	return fmt.Errorf("-N: %w", err)
}

// vpcBlocks returns vpc's associated IPv4 CIDR blocks.
func (inv inventory) vpcBlocks(ctx context.Context, vpc string) ([]netCandidate, error) {
	out, err := inv.describeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{vpc}})
	if err != nil {
		return nil, permissionHint(err, "ec2:DescribeVpcs")
	}
	var list []netCandidate
	for _, v := range out.Vpcs {
		for _, a := range v.CidrBlockAssociationSet {
			if a.CidrBlockState == nil || a.CidrBlockState.State == ec2types.VpcCidrBlockStateCodeAssociated {
				list = append(list, netCandidate{aws.ToString(a.CidrBlock), vpc})
			}
		}
		if len(v.CidrBlockAssociationSet) == 0 && v.CidrBlock != nil {
			list = append(list, netCandidate{aws.ToString(v.CidrBlock), vpc})
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("ec2:DescribeVpcs: no CIDR block of %s", vpc)
	}
	return list, nil
}

// vpcRoutes returns the active IPv4 routes of subnet's route table (else
// vpc's main one) that lead to a peering connection or a transit gateway.
func (inv inventory) vpcRoutes(ctx context.Context, vpc, subnet string) ([]netCandidate, error) {
	table, err := inv.routeTable(ctx, "association.subnet-id", subnet)
	if err == nil && table == nil {
		table, err = inv.routeTable(ctx, "vpc-id", vpc)
	}
	if err != nil || table == nil {
		return nil, err
	}
	var list []netCandidate
	for _, r := range table.Routes {
		if r.DestinationCidrBlock == nil || r.State == ec2types.RouteStateBlackhole {
			continue
		}
		via := ""
		switch {
		case r.VpcPeeringConnectionId != nil:
			via = "peering " + *r.VpcPeeringConnectionId
		case r.TransitGatewayId != nil:
			via = "transit gateway " + *r.TransitGatewayId
		default:
			continue
		}
		list = append(list, netCandidate{*r.DestinationCidrBlock, via})
	}
	return list, nil
}

// routeTable returns the route table the filter selects: a subnet's
// explicit one, or with vpc-id the VPC's main one; nil when there is none.
func (inv inventory) routeTable(ctx context.Context, filter, value string) (*ec2types.RouteTable, error) {
	if value == "" {
		return nil, nil
	}
	filters := []ec2types.Filter{{Name: aws.String(filter), Values: []string{value}}}
	if filter == "vpc-id" {
		filters = append(filters, ec2types.Filter{Name: aws.String("association.main"), Values: []string{"true"}})
	}
	out, err := inv.describeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: filters})
	if err != nil {
		return nil, permissionHint(err, "ec2:DescribeRouteTables")
	}
	if len(out.RouteTables) == 0 {
		return nil, nil
	}
	return &out.RouteTables[0], nil
}

// planAutoNets decides which candidates to route beside given.
func planAutoNets(cands []netCandidate, given []netip.Prefix, protect []netip.Addr, names map[netip.Addr]string) autoNetPlan {
	var plan autoNetPlan
	for _, c := range cands {
		p, reason := checkAutoNet(c.CIDR, protect, names)
		if reason != "" {
			plan.Skipped = append(plan.Skipped, skippedNet{c.CIDR, c.Via, reason})
			continue
		}
		plan.Nets = append(plan.Nets, autoNet{p, c.Via})
	}
	plan.CIDRs = mergeCIDRs(given, plan.Nets)
	var nets []autoNet
	for _, n := range plan.Nets {
		switch o := outer(plan.CIDRs, n.Prefix); {
		case slices.Contains(given, n.Prefix):
			plan.Skipped = append(plan.Skipped, skippedNet{n.Prefix.String(), n.Via, "given on the command line"})
		case o != n.Prefix:
			plan.Skipped = append(plan.Skipped, skippedNet{n.Prefix.String(), n.Via, "inside " + o.String()})
		case slices.ContainsFunc(nets, func(m autoNet) bool { return m.Prefix == n.Prefix }):
			plan.Skipped = append(plan.Skipped, skippedNet{n.Prefix.String(), n.Via, "listed twice"})
		default:
			nets = append(nets, n)
		}
	}
	plan.Nets = nets
	return plan
}

// mergeCIDRs returns given and nets without a range inside another or
// twice, in address order.
func mergeCIDRs(given []netip.Prefix, nets []autoNet) []netip.Prefix {
	all := slices.Clone(given)
	for _, n := range nets {
		all = append(all, n.Prefix)
	}
	var out []netip.Prefix
	for _, p := range all {
		if !slices.Contains(out, p) && outer(all, p) == p {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// outer returns the largest of all that contains p, or p.
func outer(all []netip.Prefix, p netip.Prefix) netip.Prefix {
	best := p
	for _, q := range all {
		if q.Bits() < best.Bits() && q.Contains(p.Addr()) {
			best = q
		}
	}
	return best
}

// checkAutoNet parses cidr and says why it may not be routed, if so.
func checkAutoNet(cidr string, protect []netip.Addr, names map[netip.Addr]string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(cidr)
	switch {
	case err != nil || !p.Addr().Is4():
		return p, "not an IPv4 range"
	case p.Bits() == 0:
		return p, "a default route"
	}
	p = p.Masked()
	for _, a := range protect {
		if p.Contains(a) {
			what := names[a]
			if what == "" {
				what = "an address that must stay out of the tunnel"
			}
			if !strings.Contains(what, a.String()) {
				what += " (" + a.String() + ")"
			}
			return p, "it would capture " + what
		}
	}
	if _, err := routing.ParseCIDRs([]string{p.String()}); err != nil {
		return p, strings.TrimPrefix(err.Error(), "routing: ")
	}
	return p, ""
}

// printAutoNets shows plan for in before connecting.
func printAutoNets(w io.Writer, in instance, plan autoNetPlan) {
	fmt.Fprintf(w, "vpcvpn: -N: the ranges of %s in %s:\n", in.label(), plan.VPC)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range plan.Nets {
		fmt.Fprintf(tw, "vpcvpn:   %s\t%s\n", n.Prefix, n.Via)
	}
	for _, s := range plan.Skipped {
		fmt.Fprintf(tw, "vpcvpn:   %s\t%s\tskipped: %s\n", s.CIDR, s.Via, s.Reason)
	}
	tw.Flush()
}
