package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// newTestResolvConf returns a resolv.conf Resolver on a temporary
// resolv.conf holding orig, reverted when the test ends.
func newTestResolvConf(t *testing.T, orig string) (*resolvConf, *dnsEnv) {
	t.Helper()
	env := newTestEnv(t, nil)
	writeFile(t, env.ResolvConf, orig)
	c := newResolvConf(env)
	t.Cleanup(func() { c.RevertDNS() })
	return c, env
}

// planned returns the golden resolv.conf of a testdata input with its
// backup path moved into env's state directory.
func planned(t *testing.T, env *dnsEnv, name string) string {
	t.Helper()
	g := readFile(t, filepath.Join("testdata/resolvconf", name+".golden"))
	return strings.Replace(g, "backup=/var/run/vpcvpn/", "backup="+env.StateDir+"/", 1)
}

func TestResolvConfSetRevert(t *testing.T) {
	tests := []struct {
		name     string
		fallback []netip.Addr
	}{
		{name: "dhcp", fallback: addrs("192.168.1.1", "192.168.1.2")},
		{name: "netns", fallback: addrs("10.99.0.2")},
		{name: "no-newline", fallback: addrs("10.0.0.2")},
		{name: "empty", fallback: addrs("127.0.0.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := readFile(t, filepath.Join("testdata/resolvconf", tt.name+".in"))
			c, env := newTestResolvConf(t, orig)
			before := inode(t, env.ResolvConf)

			res, err := c.SetDNS(testDNS)
			mustNoErr(t, "SetDNS", err)
			if res.Mode != DNSModeResolvConf || !slices.Equal(res.Fallback, tt.fallback) {
				t.Errorf("SetDNS = %+v, want mode %s, fallback %v", res, DNSModeResolvConf, tt.fallback)
			}
			wantFile(t, env.ResolvConf, planned(t, env, tt.name))
			if !os.SameFile(before, inode(t, env.ResolvConf)) {
				t.Errorf("resolv.conf was replaced, not written in place")
			}
			backup := filepath.Join(env.StateDir, "vpcvpn0.resolv.conf")
			wantFile(t, backup, "# vpcvpn backup of "+env.ResolvConf+" for instance vpcvpn0\n"+orig)
			if fi := inode(t, backup); fi.Mode().Perm() != 0o600 {
				t.Errorf("backup mode = %v, want 0600", fi.Mode().Perm())
			}
			if _, err := c.SetDNS(testDNS); !errors.Is(err, errDNSSet) {
				t.Errorf("second SetDNS = %v, want %v", err, errDNSSet)
			}

			for range 2 { // the second does nothing
				mustNoErr(t, "RevertDNS", c.RevertDNS())
				wantFile(t, env.ResolvConf, orig)
				wantNoFile(t, backup)
			}
			if !os.SameFile(before, inode(t, env.ResolvConf)) {
				t.Errorf("resolv.conf was replaced, not written in place")
			}
		})
	}
}

// TestResolvConfStale: what a vpcvpn that did not stop cleanly left, found
// by SetDNS and by CleanupDNS.
func TestResolvConfStale(t *testing.T) {
	const orig = "search corp.example\nnameserver 192.168.1.1\n"
	otherProxy := netip.MustParseAddr("100.78.0.53")
	tests := []struct {
		name     string
		inst     string
		pid      int
		backup   string // content of the backup named by the stamp; "-" for none
		want     string // resolv.conf after CleanupDNS
		wantErr  string // from SetDNS
		keepFile bool   // the backup stays
	}{
		{name: "dead instance", inst: "vpcvpn1", pid: deadPID, backup: orig, want: orig},
		{name: "same name, pid reused", inst: testInst, pid: livePID, backup: orig, want: orig},
		{name: "backup gone", inst: "vpcvpn1", pid: deadPID, backup: "-", want: orig},
		{name: "running instance", inst: "vpcvpn1", pid: livePID, backup: orig, keepFile: true,
			wantErr: "belongs to the running vpcvpn instance vpcvpn1 (pid 5000): stop that tunnel (sudo vpcvpn down --name vpcvpn1), or start this one with --no-dns; if no such tunnel runs, copy its backup "},
		{name: "bad backup", inst: "vpcvpn1", pid: deadPID, backup: "nameserver 6.6.6.6\n", keepFile: true,
			wantErr: "which is not one of vpcvpn's: restore"},
	}
	for _, tt := range tests {
		for _, call := range []string{"SetDNS", "CleanupDNS"} {
			t.Run(tt.name+"/"+call, func(t *testing.T) {
				c, env := newTestResolvConf(t, "")
				backup := filepath.Join(env.StateDir, tt.inst+".resolv.conf")
				stale := string(planResolvConf([]byte(orig), otherProxy, stamp{instance: tt.inst, pid: tt.pid, backup: backup}))
				writeFile(t, env.ResolvConf, stale)
				if tt.backup != "-" {
					content := tt.backup
					if tt.name != "bad backup" {
						content = string(backupContent(env.ResolvConf, tt.inst, []byte(tt.backup)))
					}
					writeFile(t, backup, content)
				}

				var err error
				if call == "CleanupDNS" {
					err = c.CleanupDNS()
					if tt.name == "running instance" {
						mustNoErr(t, "CleanupDNS", err) // a running tunnel's is not stale
						wantFile(t, env.ResolvConf, stale)
						return
					}
				} else {
					var res DNSResult
					res, err = c.SetDNS(testDNS)
					if err == nil && !slices.Equal(res.Fallback, addrs("192.168.1.1")) {
						t.Errorf("fallback = %v, want the original's, not the stale proxy", res.Fallback)
					}
					if err == nil {
						mustNoErr(t, "RevertDNS", c.RevertDNS())
					}
				}
				if tt.wantErr != "" {
					wantErr(t, call, err, tt.wantErr)
					wantFile(t, env.ResolvConf, stale)
				} else {
					mustNoErr(t, call, err)
					wantFile(t, env.ResolvConf, tt.want)
				}
				if _, err := os.Stat(backup); tt.keepFile != (err == nil) && tt.backup != "-" {
					t.Errorf("backup exists: %v, want %v", err == nil, tt.keepFile)
				}
			})
		}
	}
}

// TestResolvConfRewrite: a DHCP client rewrites resolv.conf while the
// tunnel runs. The watcher takes the new version as the original, sets
// split DNS on top of it again, reports the new nameservers, and teardown
// restores that version.
func TestResolvConfRewrite(t *testing.T) {
	const (
		orig  = "search home.example\nnameserver 192.168.1.1\n"
		newer = "# dhclient\nsearch office.example\nnameserver 10.1.0.1\nnameserver 10.1.0.2\n"
		same  = "# dhclient, lease renewed\nsearch office.example\nnameserver 10.1.0.1\nnameserver 10.1.0.2\n"
	)
	c, env := newTestResolvConf(t, orig)
	before := inode(t, env.ResolvConf)
	_, err := c.SetDNS(testDNS)
	mustNoErr(t, "SetDNS", err)
	ours := readFile(t, env.ResolvConf)
	backup := filepath.Join(env.StateDir, "vpcvpn0.resolv.conf")

	if fb, changed := c.check(); changed {
		t.Errorf("check with nothing rewritten = %v, %v", fb, changed)
	}
	mustNoErr(t, "dhclient", writeInPlace(env.ResolvConf, []byte(newer)))
	fb, changed := c.check()
	if !changed || !slices.Equal(fb, addrs("10.1.0.1", "10.1.0.2")) {
		t.Errorf("check after the rewrite = %v, %v; want the new nameservers", fb, changed)
	}
	wantFile(t, env.ResolvConf, string(planResolvConf([]byte(newer), testServer, env.stamp(backup))))
	wantFile(t, backup, string(backupContent(env.ResolvConf, testInst, []byte(newer))))

	// The same nameservers again: set again, nothing to report.
	mustNoErr(t, "dhclient", writeInPlace(env.ResolvConf, []byte(same)))
	if fb, changed := c.check(); changed {
		t.Errorf("check after a rewrite with the same nameservers = %v, %v", fb, changed)
	}
	if got := readFile(t, env.ResolvConf); !strings.HasPrefix(got, "# vpcvpn instance=vpcvpn0") || !strings.Contains(got, "# dhclient, lease renewed\n") {
		t.Errorf("resolv.conf after the second rewrite:\n%s", got)
	}

	// Someone edits our file: ours again, as it was.
	mustNoErr(t, "edit", writeInPlace(env.ResolvConf, []byte(readFile(t, env.ResolvConf)+"nameserver 9.9.9.9\n")))
	want := readFile(t, env.ResolvConf)
	want = strings.TrimSuffix(want, "nameserver 9.9.9.9\n")
	c.check()
	wantFile(t, env.ResolvConf, want)
	if want == ours {
		t.Fatal("test is wrong: the rewrites changed nothing")
	}

	mustNoErr(t, "RevertDNS", c.RevertDNS())
	wantFile(t, env.ResolvConf, same)
	wantNoFile(t, backup)
	if !os.SameFile(before, inode(t, env.ResolvConf)) {
		t.Errorf("resolv.conf was replaced, not written in place")
	}
}

// TestResolvConfWatcher: the same with the watcher's own goroutine.
func TestResolvConfWatcher(t *testing.T) {
	const newer = "nameserver 10.1.0.1\n"
	c, env := newTestResolvConf(t, "nameserver 192.168.1.1\n")
	env.PollInterval = 5 * time.Millisecond
	changed := make(chan []netip.Addr, 1)
	env.FallbackChanged = func(fb []netip.Addr) { changed <- fb }
	_, err := c.SetDNS(testDNS)
	mustNoErr(t, "SetDNS", err)

	mustNoErr(t, "dhclient", writeInPlace(env.ResolvConf, []byte(newer)))
	select {
	case fb := <-changed:
		if !slices.Equal(fb, addrs("10.1.0.1")) {
			t.Errorf("FallbackChanged(%v), want 10.1.0.1", fb)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not notice the rewrite")
	}
	if got := readFile(t, env.ResolvConf); !strings.HasPrefix(got, stampPrefix) || !strings.Contains(got, "#vpcvpn# nameserver 10.1.0.1\n") {
		t.Errorf("resolv.conf after the rewrite:\n%s", got)
	}
	mustNoErr(t, "RevertDNS", c.RevertDNS())
	wantFile(t, env.ResolvConf, newer)
}

// TestResolvConfRewriteBeforeRevert: a rewrite the watcher has not seen yet
// is the newest original, kept by RevertDNS.
func TestResolvConfRewriteBeforeRevert(t *testing.T) {
	const newer = "nameserver 10.1.0.1\n"
	c, env := newTestResolvConf(t, "nameserver 192.168.1.1\n")
	_, err := c.SetDNS(testDNS)
	mustNoErr(t, "SetDNS", err)
	mustNoErr(t, "dhclient", writeInPlace(env.ResolvConf, []byte(newer)))
	mustNoErr(t, "RevertDNS", c.RevertDNS())
	wantFile(t, env.ResolvConf, newer)
	wantNoFile(t, c.backup)
}

// TestResolvConfOtherInstance: a file another vpcvpn wrote while this one
// runs is left alone, by the watcher and by RevertDNS.
func TestResolvConfOtherInstance(t *testing.T) {
	c, env := newTestResolvConf(t, "nameserver 192.168.1.1\n")
	_, err := c.SetDNS(testDNS)
	mustNoErr(t, "SetDNS", err)
	other := string(planResolvConf([]byte("nameserver 192.168.1.1\n"), testServer, stamp{instance: "vpcvpn1", pid: livePID, backup: "/x"}))
	mustNoErr(t, "other", writeInPlace(env.ResolvConf, []byte(other)))
	for range 2 {
		if _, changed := c.check(); changed {
			t.Errorf("check reported a change")
		}
		wantFile(t, env.ResolvConf, other)
	}
	mustNoErr(t, "RevertDNS", c.RevertDNS())
	wantFile(t, env.ResolvConf, other)
}

func TestResolvConfErrors(t *testing.T) {
	const orig = "nameserver 192.168.1.1\n"
	errBoom := errors.New("boom")
	t.Run("no resolv.conf", func(t *testing.T) {
		c, env := newTestResolvConf(t, "")
		os.Remove(env.ResolvConf)
		_, err := c.SetDNS(testDNS)
		wantErr(t, "SetDNS", err, "resolv.conf does not exist, so this machine has no DNS settings to split: create it, or start with --no-dns")
		wantNoFile(t, env.ResolvConf)
		mustNoErr(t, "CleanupDNS", c.CleanupDNS())
	})
	t.Run("invalid", func(t *testing.T) {
		c, env := newTestResolvConf(t, orig)
		_, err := c.SetDNS(DNS{Interface: testInst, Server: testServer})
		wantErr(t, "SetDNS", err, "no domains")
		wantFile(t, env.ResolvConf, orig)
	})
	t.Run("state directory", func(t *testing.T) {
		c, env := newTestResolvConf(t, orig)
		writeFile(t, env.StateDir, "not a directory")
		_, err := c.SetDNS(testDNS)
		wantErr(t, "SetDNS", err, "platform: make the state directory: mkdir "+env.StateDir)
		wantFile(t, env.ResolvConf, orig)
	})
	t.Run("write fails", func(t *testing.T) {
		c, env := newTestResolvConf(t, orig)
		c.write = func(path string, b []byte) error {
			if strings.HasPrefix(string(b), stampPrefix) {
				os.WriteFile(path, nil, 0o644) // truncated, as a failed write may leave it
				return errBoom
			}
			return writeInPlace(path, b)
		}
		_, err := c.SetDNS(testDNS)
		wantErr(t, "SetDNS", err, "platform: write "+env.ResolvConf+": boom")
		wantFile(t, env.ResolvConf, orig)
		wantNoFile(t, c.backup)
	})
	t.Run("write and restore fail", func(t *testing.T) {
		c, env := newTestResolvConf(t, orig)
		c.write = func(string, []byte) error { return errBoom }
		_, err := c.SetDNS(testDNS)
		wantErr(t, "SetDNS", err, "putting the original back failed too (boom): it is in "+c.backup)
		wantFile(t, c.backup, string(backupContent(env.ResolvConf, testInst, []byte(orig))))
	})
	t.Run("restore fails, then works", func(t *testing.T) {
		c, env := newTestResolvConf(t, orig)
		_, err := c.SetDNS(testDNS)
		mustNoErr(t, "SetDNS", err)
		c.write = func(string, []byte) error { return errBoom }
		err = c.RevertDNS()
		wantErr(t, "RevertDNS", err, "platform: restore "+env.ResolvConf+" (the original is in "+c.backup+"): boom")
		c.write = writeInPlace
		mustNoErr(t, "second RevertDNS", c.RevertDNS())
		wantFile(t, env.ResolvConf, orig)
		wantNoFile(t, c.backup)
	})
}

// TestResolvConfRewriteWarning: a program that rewrites resolv.conf again
// and again gets one warning naming the fix.
func TestResolvConfRewriteWarning(t *testing.T) {
	c, env := newTestResolvConf(t, "nameserver 192.168.1.1\n")
	var logs strings.Builder
	env.log = slog.New(slog.NewTextHandler(&logs, nil))
	now := time.Unix(1_800_000_000, 0)
	env.now = func() time.Time { return now }
	_, err := c.SetDNS(testDNS)
	mustNoErr(t, "SetDNS", err)
	for i := range 2 * rewriteWarn {
		mustNoErr(t, "rewrite", writeInPlace(env.ResolvConf, []byte(fmt.Sprintf("nameserver 192.168.1.%d\n", i+2))))
		c.check()
		now = now.Add(5 * time.Second)
	}
	if n := strings.Count(logs.String(), "keeps rewriting resolv.conf"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	logs.Reset()
	now = now.Add(time.Hour) // calm again: a single rewrite is no fight
	mustNoErr(t, "rewrite", writeInPlace(env.ResolvConf, []byte("nameserver 10.0.0.1\n")))
	c.check()
	if strings.Contains(logs.String(), "keeps rewriting") {
		t.Errorf("warned after one rewrite in an hour:\n%s", logs.String())
	}
}
