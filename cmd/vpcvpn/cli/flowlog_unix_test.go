//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFlowLogFile: the log is created, or an existing one taken over, with
// mode 0600 and, as root, the invoking user as owner; a path that cannot
// be written, a directory or a symbolic link is refused with the fix.
func TestFlowLogFile(t *testing.T) {
	dir := t.TempDir()
	inv := invoker{UID: -1, GID: -1}
	if os.Geteuid() == 0 {
		inv = invoker{UID: 65534, GID: 65534} // nobody: the user who ran sudo
	}
	existing := filepath.Join(dir, "open.jsonl")
	if err := os.WriteFile(existing, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.jsonl")
	if err := os.Symlink(existing, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		wantErr    string // "" for none
	}{
		{"new file", filepath.Join(dir, "flows.jsonl"), ""},
		{"existing, world-readable", existing, ""},
		{"missing directory", filepath.Join(dir, "nope", "flows.jsonl"), "(no such file or directory): give a file in a directory that exists"},
		{"a directory", dir, "give a file"},
		{"a symbolic link", link, "give a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := checkFlowLog(tt.path, inv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "--flow-log "+tt.path) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line about --flow-log %s with %q", err, tt.path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			if st := fi.Sys().(*syscall.Stat_t); inv.UID >= 0 && (int(st.Uid) != inv.UID || int(st.Gid) != inv.GID) {
				t.Errorf("owner %d:%d, want the invoker's %d:%d", st.Uid, st.Gid, inv.UID, inv.GID)
			}
		})
	}
}
