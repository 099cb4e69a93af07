package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestTargetsBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--filter", "bastion"}, `invalid --filter "bastion": give tag:KEY=VALUE`},
		{[]string{"--filter", "tag:Role"}, `invalid --filter "tag:Role"`},
		{[]string{"--filter", "i-0123456789abcdef0"}, "give tag:KEY=VALUE"},
		{[]string{"bastion"}, `vpcvpn targets takes no arguments (got "bastion")`},
	}
	for _, tt := range tests {
		err := newRoot(&bytes.Buffer{}, &bytes.Buffer{}).Run(context.Background(), append([]string{"vpcvpn", "targets"}, tt.args...))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestPrintTargets(t *testing.T) {
	list, err := labAccount().inventory().managed(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sortTargets(list)
	var table, js bytes.Buffer
	printTargets(&table, list)
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "NAME") ||
		strings.Join(strings.Fields(lines[1]), " ") != "bastion i-0000000000000000a vpc-a subnet-a us-east-1a running Online 3.3.987.0 Amazon Linux 2023 ec2-user" ||
		strings.Join(strings.Fields(lines[3]), " ") != "- mi-00000000000000001 - - - - Online 3.3.987.0 Debian GNU/Linux 12 -" {
		t.Errorf("table:\n%s", table.String())
	}
	if err := printTargetsJSON(&js, list); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil || len(got) != 5 {
		t.Fatalf("json %v:\n%s", err, js.String())
	}
	if got[0]["id"] != "i-0000000000000000a" || got[0]["usable"] != true || got[0]["eic_user"] != "ec2-user" ||
		got[4]["usable"] != false || got[4]["state"] != "stopped" {
		t.Errorf("json:\n%s", js.String())
	}
}
