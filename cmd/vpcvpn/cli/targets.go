package cli

// `vpcvpn targets`: what can be a bastion in this account and region, the
// instances SSM manages, with where they are, whether their agent is
// online and whether EC2 Instance Connect can push a key to them.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v3"
)

func targetsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "targets",
		Usage: "list the instances Session Manager can reach, for --target",
		Description: "Online instances first, by Name. EIC USER is the default user EC2 Instance\n" +
			"Connect can push vpcvpn's key for (Amazon Linux 2/2023, Ubuntu 20.04 and later);\n" +
			"for others give an authorized key with -i.\n\n" +
			"   vpcvpn targets --profile prod --region eu-west-1\n" +
			"   vpcvpn targets --filter tag:Role=bastion --json",
		Flags: append(awsAccountFlags(),
			&ucli.StringFlag{Name: "filter", Usage: "only the instances tagged `tag:KEY=VALUE`"},
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON array"},
		),
		Action: runTargets,
	}
}

// awsAccountFlags are the --profile and --region of the commands that call
// AWS outside a tunnel (targets, gc).
func awsAccountFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "profile", Usage: "AWS `PROFILE` (default: AWS_PROFILE, then default)"},
		&ucli.StringFlag{Name: "region", Usage: "AWS `REGION` (default: AWS_REGION or the profile's)"},
	}
}

func runTargets(ctx context.Context, cmd *ucli.Command) error {
	if cmd.Args().Len() > 0 {
		return fmt.Errorf("vpcvpn targets takes no arguments (got %q): filter with --filter tag:KEY=VALUE", cmd.Args().First())
	}
	var filter *targetSpec
	if f := cmd.String("filter"); f != "" {
		spec, err := parseTargetSpec(f)
		if err != nil || spec.Key == "" || !strings.HasPrefix(f, "tag:") {
			return fmt.Errorf("invalid --filter %q: give tag:KEY=VALUE, such as tag:Role=bastion", f)
		}
		filter = &spec
	}
	o := &upOptions{profile: cmd.String("profile"), region: cmd.String("region")}
	inv := currentInvoker()
	cfg, err := awsConfig(ctx, o, inv)
	if err != nil {
		return sudoHint(err, o, inv)
	}
	list, err := newInventory(cfg).managed(ctx, filter)
	if err != nil {
		return sudoHint(fmt.Errorf("list targets: %w", err), o, inv)
	}
	sortTargets(list)
	w := cmd.Root().Writer
	if cmd.Bool("json") {
		return printTargetsJSON(w, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(cmd.Root().ErrWriter, "vpcvpn: no instance in %s is managed by SSM%s\n", cfg.Region, filterText(filter))
		return nil
	}
	printTargets(w, list)
	return nil
}

func filterText(f *targetSpec) string {
	if f == nil {
		return ""
	}
	return " with " + f.tagText()
}

// sortTargets puts the usable instances first, then by Name and id.
func sortTargets(list []instance) {
	sortInstances(list)
	slices.SortStableFunc(list, func(a, b instance) int {
		switch {
		case a.usable() == b.usable():
			return 0
		case a.usable():
			return -1
		}
		return 1
	})
}

func printTargets(w io.Writer, list []instance) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tVPC\tSUBNET\tAZ\tSTATE\tPING\tAGENT\tPLATFORM\tEIC USER")
	for _, in := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(in.Name), in.ID, orDash(in.VPC), orDash(in.Subnet),
			orDash(in.AZ), orDash(in.State), orDash(in.Ping), orDash(in.AgentVersion), orDash(in.Platform), orDash(in.EICUser))
	}
	tw.Flush()
}

// targetJSON is one instance of `vpcvpn targets --json`.
type targetJSON struct {
	instance
	Usable bool `json:"usable"` // running, its SSM agent online
}

func printTargetsJSON(w io.Writer, list []instance) error {
	out := make([]targetJSON, len(list))
	for i, in := range list {
		out[i] = targetJSON{in, in.usable()}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
