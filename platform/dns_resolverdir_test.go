package platform

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func newTestResolverDir(t *testing.T) (*resolverDir, *dnsEnv) {
	t.Helper()
	env := newTestEnv(t, nil)
	r := &resolverDir{env: env}
	t.Cleanup(func() { r.RevertDNS() })
	return r, env
}

// dirListing returns the regular files of dir as "name: first line".
func dirListing(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			first, _, _ := strings.Cut(readFile(t, filepath.Join(dir, e.Name())), "\n")
			out = append(out, e.Name()+": "+first)
		}
	}
	return out
}

func wantListing(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := dirListing(t, dir); !slices.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant:\n%s", dir, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestResolverDir: the files SetDNS writes are the golden ones, and
// RevertDNS removes them and nothing else.
func TestResolverDir(t *testing.T) {
	r, env := newTestResolverDir(t)
	writeFile(t, filepath.Join(env.ResolverDir, "corp.example"), "nameserver 10.8.0.1\n") // a VPN client's
	res, err := r.SetDNS(testDNS)
	mustNoErr(t, "SetDNS", err)
	if res.Mode != DNSModeResolverFiles || res.Fallback != nil {
		t.Errorf("SetDNS = %+v", res)
	}
	var b bytes.Buffer
	for _, dom := range testDNS.Domains {
		fmt.Fprintf(&b, "==> %s <==\n%s", dom, readFile(t, filepath.Join(env.ResolverDir, dom)))
	}
	golden(t, "testdata/resolver/defaults.golden", b.Bytes())
	if _, err := r.SetDNS(testDNS); !errors.Is(err, errDNSSet) {
		t.Errorf("second SetDNS = %v", err)
	}
	mustNoErr(t, "CleanupDNS while set", r.CleanupDNS())
	if len(dirListing(t, env.ResolverDir)) != 4 {
		t.Errorf("CleanupDNS removed files of the running instance")
	}
	for range 2 {
		mustNoErr(t, "RevertDNS", r.RevertDNS())
		wantListing(t, env.ResolverDir, "corp.example: nameserver 10.8.0.1")
	}
}

// TestResolverDirNotOurs: a file vpcvpn did not write is never replaced,
// and a failed SetDNS leaves nothing behind.
func TestResolverDirNotOurs(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{name: "foreign", content: "nameserver 10.8.0.1\n",
			wantErr: "compute.internal exists and is not vpcvpn's, so vpcvpn leaves it alone: remove it, or leave out the split domain compute.internal"},
		{name: "running instance", content: "# vpcvpn instance=vpcvpn1 pid=5000\nnameserver 100.78.0.53\n",
			wantErr: "compute.internal belongs to the running vpcvpn instance vpcvpn1 (pid 5000): stop that tunnel (sudo vpcvpn down --name vpcvpn1), or start this one with --no-dns; if no such tunnel runs, remove it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, env := newTestResolverDir(t)
			path := filepath.Join(env.ResolverDir, "compute.internal")
			writeFile(t, path, tt.content)
			_, err := r.SetDNS(testDNS)
			wantErr(t, "SetDNS", err, "platform: "+env.ResolverDir+"/"+tt.wantErr)
			first, _, _ := strings.Cut(tt.content, "\n")
			wantListing(t, env.ResolverDir, "compute.internal: "+first)
		})
	}
}

// TestResolverDirStale: CleanupDNS, and SetDNS before it writes, remove the
// files of instances that are gone, and only those.
func TestResolverDirStale(t *testing.T) {
	for _, call := range []string{"CleanupDNS", "SetDNS"} {
		t.Run(call, func(t *testing.T) {
			r, env := newTestResolverDir(t)
			files := map[string]string{
				"old.example":       "# vpcvpn instance=vpcvpn1 pid=3000\nnameserver 100.78.0.53\n", // dead
				"rds.amazonaws.com": "# vpcvpn instance=vpcvpn0 pid=5000\nnameserver 100.77.0.53\n", // our name: stale
				"other.example":     "# vpcvpn instance=vpcvpn1 pid=5000\nnameserver 100.78.0.53\n", // running
				"corp.example":      "nameserver 10.8.0.1\n",                                        // not ours
			}
			for name, content := range files {
				writeFile(t, filepath.Join(env.ResolverDir, name), content)
			}
			mustNoErr(t, "mkdir", os.Mkdir(filepath.Join(env.ResolverDir, "sub.example"), 0o755))
			if call == "CleanupDNS" {
				mustNoErr(t, call, r.CleanupDNS())
				wantListing(t, env.ResolverDir, "corp.example: nameserver 10.8.0.1", "other.example: # vpcvpn instance=vpcvpn1 pid=5000")
				return
			}
			_, err := r.SetDNS(testDNS)
			mustNoErr(t, call, err)
			wantListing(t, env.ResolverDir,
				"compute.internal: # vpcvpn instance=vpcvpn0 pid=4242",
				"corp.example: nameserver 10.8.0.1",
				"ec2.internal: # vpcvpn instance=vpcvpn0 pid=4242",
				"other.example: # vpcvpn instance=vpcvpn1 pid=5000",
				"rds.amazonaws.com: # vpcvpn instance=vpcvpn0 pid=4242")
		})
	}
}

// TestResolverDirReplaced: a file another program put in place of ours is
// left by RevertDNS.
func TestResolverDirReplaced(t *testing.T) {
	r, env := newTestResolverDir(t)
	_, err := r.SetDNS(testDNS)
	mustNoErr(t, "SetDNS", err)
	writeFile(t, filepath.Join(env.ResolverDir, "ec2.internal"), "nameserver 10.8.0.1\n")
	mustNoErr(t, "RevertDNS", r.RevertDNS())
	wantListing(t, env.ResolverDir, "ec2.internal: nameserver 10.8.0.1")
}

func TestResolverDirErrors(t *testing.T) {
	r, env := newTestResolverDir(t)
	writeFile(t, env.ResolverDir, "not a directory")
	_, err := r.SetDNS(testDNS)
	wantErr(t, "SetDNS", err, "platform: read "+env.ResolverDir)
	mustNoErr(t, "RevertDNS", r.RevertDNS())

	r, env = newTestResolverDir(t)
	_, err = r.SetDNS(DNS{Interface: "utun4", Server: testServer, Domains: []string{"../../etc/passwd"}})
	wantErr(t, "SetDNS", err, "invalid split DNS domain")
	wantNoFile(t, env.ResolverDir)
}
