package platform

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s:\n%s\nwant:\n%s", path, got, want)
	}
}

var (
	testServer = netip.MustParseAddr("100.77.0.53")
	testStamp  = stamp{instance: "vpcvpn0", pid: 4242, backup: "/var/run/vpcvpn/vpcvpn0.resolv.conf"}
)

func addrs(ss ...string) []netip.Addr {
	var a []netip.Addr
	for _, s := range ss {
		a = append(a, netip.MustParseAddr(s))
	}
	return a
}

// TestPlanResolvConf: golden resolv.conf files from testdata/resolvconf/*.in,
// the fallback each yields, and the way back without a backup.
func TestPlanResolvConf(t *testing.T) {
	fallback := map[string][]netip.Addr{
		"dhcp":          addrs("192.168.1.1", "192.168.1.2"),
		"netns":         addrs("10.99.0.2"),
		"many":          addrs("fe80::1%eth0", "1.1.1.1", "8.8.8.8"),
		"empty":         addrs("127.0.0.1"),
		"no-newline":    addrs("10.0.0.2"),
		"resolved-stub": addrs("127.0.0.53"),
	}
	ins, _ := filepath.Glob("testdata/resolvconf/*.in")
	if len(ins) != len(fallback) {
		t.Fatalf("testdata/resolvconf has %d inputs, the test knows %d", len(ins), len(fallback))
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			orig, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out := planResolvConf(orig, testServer, testStamp)
			golden(t, strings.TrimSuffix(in, ".in")+".golden", out)
			if s, ok := parseStamp(out); !ok || s != testStamp {
				t.Errorf("stamp = %+v, %v; want %+v", s, ok, testStamp)
			}
			if got := nameservers(out, testServer); !slices.Equal(got, addrs("127.0.0.1")) {
				t.Errorf("nameservers of the planned file = %v, want only the proxy (excluded)", got)
			}
			if got := nameservers(orig, testServer); !slices.Equal(got, fallback[name]) {
				t.Errorf("nameservers(original) = %v, want %v", got, fallback[name])
			}
			want := orig
			if len(want) > 0 && !bytes.HasSuffix(want, []byte("\n")) {
				want = append(want, '\n')
			}
			if got := unplanResolvConf(out); !bytes.Equal(got, want) {
				t.Errorf("unplanResolvConf:\n%q\nwant:\n%q", got, want)
			}
		})
	}
}

func TestNameserversExcludesServer(t *testing.T) {
	conf := []byte("nameserver 100.77.0.53\nnameserver ::ffff:100.77.0.53\nnameserver 192.168.1.1\n")
	if got := nameservers(conf, testServer); !slices.Equal(got, addrs("192.168.1.1")) {
		t.Errorf("nameservers = %v, want 192.168.1.1 only", got)
	}
}

func TestDetectMode(t *testing.T) {
	tests := []struct {
		name       string
		conf       string
		resolvectl bool
		want       DNSMode
	}{
		{name: "stub", conf: "nameserver 127.0.0.53\noptions edns0 trust-ad\n", resolvectl: true, want: DNSModeResolved},
		{name: "stub 127.0.0.54", conf: "nameserver 127.0.0.54\n", resolvectl: true, want: DNSModeResolved},
		{name: "stub without resolvectl", conf: "nameserver 127.0.0.53\n", want: DNSModeResolvConf},
		{name: "upstream list", conf: "nameserver 192.168.1.1\n", resolvectl: true, want: DNSModeResolvConf},
		{name: "stub and another", conf: "nameserver 127.0.0.53\nnameserver 1.1.1.1\n", resolvectl: true, want: DNSModeResolvConf},
		{name: "stub commented out", conf: "# nameserver 127.0.0.53\nnameserver 10.0.0.2\n", resolvectl: true, want: DNSModeResolvConf},
		{name: "no nameserver", conf: "search corp.example\n", resolvectl: true, want: DNSModeResolvConf},
		{name: "stale vpcvpn file", conf: string(planResolvConf([]byte("nameserver 127.0.0.53\n"), testServer, testStamp)), resolvectl: true, want: DNSModeResolvConf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detectMode([]byte(tt.conf), tt.resolvectl); got != tt.want {
				t.Errorf("detectMode = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseStamp(t *testing.T) {
	tests := []struct {
		name string
		line string
		want stamp
		ok   bool
	}{
		{name: "resolver file", line: "# vpcvpn instance=vpcvpn0 pid=4242\nnameserver 1.2.3.4\n", want: stamp{instance: "vpcvpn0", pid: 4242}, ok: true},
		{name: "backup with space", line: "# vpcvpn instance=a.b-c pid=7 backup=/tmp/x y/a.resolv.conf\r\n", want: stamp{instance: "a.b-c", pid: 7, backup: "/tmp/x y/a.resolv.conf"}, ok: true},
		{name: "not first line", line: "\n# vpcvpn instance=vpcvpn0 pid=4242\n"},
		{name: "no pid", line: "# vpcvpn instance=vpcvpn0\n"},
		{name: "bad pid", line: "# vpcvpn instance=vpcvpn0 pid=0\n"},
		{name: "bad instance", line: "# vpcvpn instance=../x pid=1\n"},
		{name: "empty backup", line: "# vpcvpn instance=vpcvpn0 pid=1 backup=\n"},
		{name: "other comment", line: "# Generated by NetworkManager\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseStamp([]byte(tt.line))
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseStamp = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
			if ok {
				if again, _ := parseStamp([]byte(got.String())); again != got {
					t.Errorf("round trip of %q = %+v", got.String(), again)
				}
			}
		})
	}
}

func TestDNSValidate(t *testing.T) {
	ok := DNS{Interface: "vpcvpn0", Server: testServer, Domains: []string{"compute.internal"}}
	tests := []struct {
		name    string
		edit    func(d *DNS)
		wantErr string
	}{
		{name: "ok", edit: func(d *DNS) {}},
		{name: "normalized", edit: func(d *DNS) { d.Domains = []string{"Corp.Example.", "corp.example", "_svc.x-y"} }},
		{name: "no interface", edit: func(d *DNS) { d.Interface = "" }, wantErr: "platform: split DNS: no interface name"},
		{name: "no server", edit: func(d *DNS) { d.Server = netip.Addr{} }, wantErr: "platform: split DNS: no DNS server address"},
		{name: "unspecified server", edit: func(d *DNS) { d.Server = netip.IPv4Unspecified() }, wantErr: "platform: split DNS: no DNS server address"},
		{name: "no domains", edit: func(d *DNS) { d.Domains = nil }, wantErr: "platform: split DNS: no domains: give at least one"},
		{name: "root", edit: func(d *DNS) { d.Domains = []string{"."} }, wantErr: `platform: invalid split DNS domain "": it is empty; give a domain such as internal.example`},
		{name: "path", edit: func(d *DNS) { d.Domains = []string{"../passwd"} }, wantErr: `platform: invalid split DNS domain "../passwd": a label is empty or longer than 63 characters; give a domain such as internal.example`},
		{name: "slash", edit: func(d *DNS) { d.Domains = []string{"a/b"} }, wantErr: `platform: invalid split DNS domain "a/b": it contains '/'; give a domain such as internal.example`},
		{name: "long label", edit: func(d *DNS) { d.Domains = []string{strings.Repeat("a", 64) + ".com"} }, wantErr: "a label is empty or longer than 63 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.edit(&d)
			err := d.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
	n, _ := DNS{Interface: "x", Server: netip.MustParseAddr("::ffff:100.77.0.53"), Domains: []string{"A.example.", "a.example"}}.normalize()
	if n.Server != testServer || !slices.Equal(n.Domains, []string{"a.example"}) {
		t.Errorf("normalize = %+v", n)
	}
}

func TestCheckInstance(t *testing.T) {
	for _, name := range []string{"vpcvpn0", "prod.db_1-a"} {
		if err := checkInstance(name); err != nil {
			t.Errorf("checkInstance(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", ".hidden", "-x", "a/b", "a b", "a\nb", strings.Repeat("x", 65)} {
		if err := checkInstance(name); err == nil {
			t.Errorf("checkInstance(%q) accepted it", name)
		}
	}
}

// TestPlanResolverFiles: golden /etc/resolver files, several to a golden
// file, each under a "==> name <==" header.
func TestPlanResolverFiles(t *testing.T) {
	tests := []struct {
		name    string
		domains []string
	}{
		{name: "defaults", domains: []string{"rds.amazonaws.com", "compute.internal", "ec2.internal"}},
		{name: "normalized", domains: []string{"Corp.Example.", "corp.example", "db.corp.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DNS{Interface: "utun5", Server: testServer, Domains: tt.domains}.normalize()
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			for _, f := range planResolverFiles(d, stamp{instance: "vpcvpn0", pid: 4242}) {
				fmt.Fprintf(&b, "==> %s <==\n%s", f.name, f.data)
			}
			golden(t, filepath.Join("testdata/resolver", tt.name+".golden"), b.Bytes())
		})
	}
}

func TestBackupContent(t *testing.T) {
	for _, orig := range []string{"", "nameserver 1.2.3.4", "a\nb\n\n"} {
		b := backupContent("/etc/resolv.conf", "vpcvpn0", []byte(orig))
		if got, ok := parseBackup(b); !ok || string(got) != orig {
			t.Errorf("parseBackup(backupContent(%q)) = %q, %v", orig, got, ok)
		}
	}
	if _, ok := parseBackup([]byte("nameserver 1.2.3.4\n")); ok {
		t.Errorf("parseBackup accepted a file without the header")
	}
}
