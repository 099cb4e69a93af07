package platform

import (
	"errors"
	"testing"
)

// TestResolved: the resolvectl transcripts of systemd-resolved mode.
func TestResolved(t *testing.T) {
	const notRunning = "Failed to set DNS configuration: Unit dbus-org.freedesktop.resolve1.service not found."
	set := []string{
		"resolvectl dns vpcvpn0 100.77.0.53",
		"resolvectl domain vpcvpn0 ~rds.amazonaws.com ~compute.internal ~ec2.internal",
	}
	revert := "resolvectl revert vpcvpn0"
	tests := []struct {
		name    string
		fail    map[string]string
		want    []string
		wantErr string
	}{
		{name: "ok", want: append(set, revert)},
		{
			name: "dns fails", fail: map[string]string{"resolvectl dns": notRunning},
			want:    []string{set[0], revert},
			wantErr: "platform: resolvectl dns vpcvpn0 100.77.0.53: exit status 1: " + notRunning + " (is systemd-resolved running? systemctl status systemd-resolved; or start with --no-dns)",
		},
		{
			name: "domain fails", fail: map[string]string{"resolvectl domain": "Invalid domain"},
			want:    append(set, revert),
			wantErr: "platform: resolvectl domain vpcvpn0 ~rds.amazonaws.com ~compute.internal ~ec2.internal: exit status 1: Invalid domain (is systemd-resolved",
		},
		{
			name: "undo fails too", fail: map[string]string{"resolvectl domain": "", "resolvectl revert": ""},
			want:    append(set, revert),
			wantErr: "~ec2.internal: exit status 1 (is systemd-resolved running? systemctl status systemd-resolved; or start with --no-dns); undoing it failed too: platform: resolvectl revert vpcvpn0: exit status 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := &fakeRunner{fail: tt.fail}
			r := &resolved{env: newTestEnv(t, run)}
			res, err := r.SetDNS(testDNS)
			if tt.wantErr != "" {
				wantErr(t, "SetDNS", err, tt.wantErr)
				mustNoErr(t, "RevertDNS after a failed SetDNS", r.RevertDNS()) // nothing to do
				run.check(t, tt.want...)
				return
			}
			mustNoErr(t, "SetDNS", err)
			if res.Mode != DNSModeResolved || res.Fallback != nil {
				t.Errorf("SetDNS = %+v, want mode %s without fallback", res, DNSModeResolved)
			}
			if _, err := r.SetDNS(testDNS); !errors.Is(err, errDNSSet) {
				t.Errorf("second SetDNS = %v", err)
			}
			mustNoErr(t, "CleanupDNS", r.CleanupDNS())
			mustNoErr(t, "RevertDNS", r.RevertDNS())
			mustNoErr(t, "second RevertDNS", r.RevertDNS())
			run.check(t, tt.want...)
		})
	}
}

// TestResolvedRevert: a failed revert is tried again, unless the link is
// gone, and resolved with it has forgotten the settings.
func TestResolvedRevert(t *testing.T) {
	const noLink = "Failed to resolve interface \"vpcvpn0\": No such device"
	for _, linkThere := range []bool{true, false} {
		run := &fakeRunner{}
		env := newTestEnv(t, run)
		env.linkExists = func(string) bool { return linkThere }
		r := &resolved{env: env}
		_, err := r.SetDNS(testDNS)
		mustNoErr(t, "SetDNS", err)
		run.fail = map[string]string{"resolvectl revert": noLink}
		err = r.RevertDNS()
		if !linkThere {
			mustNoErr(t, "RevertDNS without the link", err)
			mustNoErr(t, "second RevertDNS", r.RevertDNS())
			run.check(t, "resolvectl dns vpcvpn0 100.77.0.53", "resolvectl domain vpcvpn0 ~rds.amazonaws.com ~compute.internal ~ec2.internal", "resolvectl revert vpcvpn0")
			continue
		}
		wantErr(t, "RevertDNS", err, "platform: resolvectl revert vpcvpn0: exit status 1: "+noLink)
		run.fail = nil
		mustNoErr(t, "second RevertDNS", r.RevertDNS())
		run.check(t, "resolvectl dns vpcvpn0 100.77.0.53", "resolvectl domain vpcvpn0 ~rds.amazonaws.com ~compute.internal ~ec2.internal", "resolvectl revert vpcvpn0", "resolvectl revert vpcvpn0")
	}
}
