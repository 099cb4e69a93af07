package platform

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLinuxResolverMode: SetDNS restores a stale resolv.conf first, then
// chooses systemd-resolved or resolv.conf by what resolv.conf now says.
func TestLinuxResolverMode(t *testing.T) {
	const stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\n"
	stale := func(env *dnsEnv) string {
		return string(planResolvConf([]byte(stub), testServer, stamp{instance: testInst, pid: deadPID, backup: filepath.Join(env.StateDir, "gone")}))
	}
	tests := []struct {
		name       string
		conf       func(env *dnsEnv) string
		resolvectl bool
		want       DNSResult
		commands   []string
	}{
		{
			name: "resolved", conf: func(*dnsEnv) string { return stub }, resolvectl: true,
			want: DNSResult{Mode: DNSModeResolved},
			commands: []string{
				"resolvectl dns vpcvpn0 100.77.0.53",
				"resolvectl domain vpcvpn0 ~rds.amazonaws.com ~compute.internal ~ec2.internal",
				"resolvectl revert vpcvpn0",
			},
		},
		{
			name: "stub without resolvectl", conf: func(*dnsEnv) string { return stub },
			want: DNSResult{Mode: DNSModeResolvConf, Fallback: addrs("127.0.0.53")},
		},
		{
			name: "upstream servers", conf: func(*dnsEnv) string { return "nameserver 192.168.1.1\n" }, resolvectl: true,
			want: DNSResult{Mode: DNSModeResolvConf, Fallback: addrs("192.168.1.1")},
		},
		{
			name: "stale file over the stub", conf: stale, resolvectl: true,
			want: DNSResult{Mode: DNSModeResolved},
			commands: []string{
				"resolvectl dns vpcvpn0 100.77.0.53",
				"resolvectl domain vpcvpn0 ~rds.amazonaws.com ~compute.internal ~ec2.internal",
				"resolvectl revert vpcvpn0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := &fakeRunner{}
			env := newTestEnv(t, run)
			env.lookPath = func(string) (string, error) {
				if tt.resolvectl {
					return "/usr/bin/resolvectl", nil
				}
				return "", exec.ErrNotFound
			}
			writeFile(t, env.ResolvConf, tt.conf(env))
			r := newLinuxResolver(env)
			got, err := r.SetDNS(testDNS)
			mustNoErr(t, "SetDNS", err)
			if got.Mode != tt.want.Mode || !slices.Equal(got.Fallback, tt.want.Fallback) {
				t.Errorf("SetDNS = %+v, want %+v", got, tt.want)
			}
			if _, err := r.SetDNS(testDNS); !errors.Is(err, errDNSSet) {
				t.Errorf("second SetDNS = %v", err)
			}
			mustNoErr(t, "RevertDNS", r.RevertDNS())
			mustNoErr(t, "second RevertDNS", r.RevertDNS())
			run.check(t, tt.commands...)
			if conf := readFile(t, env.ResolvConf); conf != stub && conf != "nameserver 192.168.1.1\n" {
				t.Errorf("resolv.conf after RevertDNS:\n%s", conf)
			}
		})
	}
}

func TestNewResolver(t *testing.T) {
	if _, err := NewResolver(ResolverConfig{Instance: "a/b"}); err == nil || !strings.Contains(err.Error(), `invalid instance name "a/b"`) {
		t.Errorf("NewResolver with a bad instance = %v", err)
	}
	if !processAlive(os.Getpid()) || processAlive(0) {
		t.Errorf("processAlive is wrong about this process or pid 0")
	}
}

// bindMountEnv, when set, tells TestResolvConfBindMount it runs in its own
// mount namespace.
const bindMountEnv = "VPCVPN_TEST_MOUNT_NAMESPACE"

// TestResolvConfBindMount: resolv.conf bind-mounted as under `ip netns
// exec` or in a container, where renaming over it fails. The test runs
// itself again in a mount namespace of its own (unshare -m), so the bind
// mount never shows outside, and it only mounts one temporary file on
// another: /etc is never touched.
func TestResolvConfBindMount(t *testing.T) {
	if os.Getenv(bindMountEnv) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a mount namespace (CI runs make test as root)")
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("needs unshare (util-linux) for a mount namespace")
		}
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", os.Args[0], "-test.run=^TestResolvConfBindMount$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), bindMountEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a mount namespace: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestResolvConfBindMount") {
			t.Fatalf("the test did not run in the mount namespace:\n%s", out)
		}
		return
	}
	const (
		orig  = "# the namespace's own\nnameserver 10.99.0.2\noptions timeout:1 attempts:1\n"
		newer = "nameserver 10.99.0.3\n"
	)
	dir := t.TempDir()
	src := filepath.Join(dir, "netns-resolv.conf") // like /etc/netns/<ns>/resolv.conf
	conf := filepath.Join(dir, "etc", "resolv.conf")
	writeFile(t, src, orig)
	writeFile(t, conf, "the machine's own, hidden by the mount\n")
	mustNoErr(t, "bind mount", unix.Mount(src, conf, "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount(conf, 0) })

	// The premise: renaming over a mount point fails.
	writeFile(t, filepath.Join(dir, "tmp"), "x")
	if err := os.Rename(filepath.Join(dir, "tmp"), conf); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("rename over the bind mount = %v, want EBUSY", err)
	}

	changed := make(chan []netip.Addr, 1)
	r, err := NewResolver(ResolverConfig{
		Instance:        "vpcvpntest0",
		ResolvConf:      conf,
		ResolverDir:     filepath.Join(dir, "resolver"),
		StateDir:        filepath.Join(dir, "run"),
		Run:             func(argv ...string) ([]byte, error) { return nil, errors.New("no commands here") },
		PollInterval:    5 * time.Millisecond,
		FallbackChanged: func(fb []netip.Addr) { changed <- fb },
	})
	mustNoErr(t, "NewResolver", err)
	res, err := r.SetDNS(DNS{Interface: "vpcvpntest0", Server: testServer, Domains: []string{"compute.internal"}})
	mustNoErr(t, "SetDNS", err)
	if res.Mode != DNSModeResolvConf || !slices.Equal(res.Fallback, addrs("10.99.0.2")) {
		t.Errorf("SetDNS = %+v", res)
	}
	if got := readFile(t, src); !strings.HasPrefix(got, "# vpcvpn instance=vpcvpntest0 pid=") {
		t.Errorf("the mounted file after SetDNS:\n%s", got)
	}

	mustNoErr(t, "dhclient", writeInPlace(conf, []byte(newer)))
	select {
	case fb := <-changed:
		if !slices.Equal(fb, addrs("10.99.0.3")) {
			t.Errorf("FallbackChanged(%v)", fb)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not notice the rewrite")
	}
	mustNoErr(t, "RevertDNS", r.RevertDNS())
	wantFile(t, src, newer)
}
