package dnsproxy

import "testing"

func TestInDomains(t *testing.T) {
	domains, err := canonicalDomains(append(DefaultDomains(), "Corp.Example.", "corp.example"))
	if err != nil {
		t.Fatal(err)
	}
	if len(domains) != 4 {
		t.Errorf("canonical domains %q, want 4 without the duplicate", domains)
	}
	tests := []struct {
		name string
		want bool
	}{
		{"db.abc.us-east-1.rds.amazonaws.com.", true},
		{"rds.amazonaws.com.", true},
		{"rds.amazonaws.com", true}, // no trailing dot
		{"DB.RDS.AmazonAWS.com.", true},
		{"ip-10-0-0-7.ec2.internal.", true},
		{"ip-10-0-0-7.eu-west-1.compute.internal.", true},
		{"host.corp.example.", true},
		{"xrds.amazonaws.com.", false}, // not on a label boundary
		{"amazonaws.com.", false},
		{"s3.amazonaws.com.", false},
		{"rds.amazonaws.com.evil.example.", false},
		{"compute.internal.example.", false},
		{`db\.rds.amazonaws.com.`, false}, // the label "db.rds" under amazonaws.com
		{`rds\.amazonaws.com.`, false},    // the label "rds.amazonaws" under com
		{`x.rds\.amazonaws.com.`, false},  // below that label
		{"internal.", false},
		{".", false},
	}
	for _, tt := range tests {
		if got := inDomains(domains, tt.name); got != tt.want {
			t.Errorf("inDomains(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInDomainsRoot(t *testing.T) {
	domains, err := canonicalDomains([]string{"."})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"www.example.com.", "db.rds.amazonaws.com", "."} {
		if !inDomains(domains, name) {
			t.Errorf("inDomains(%q) with the root domain = false, want true", name)
		}
	}
}
