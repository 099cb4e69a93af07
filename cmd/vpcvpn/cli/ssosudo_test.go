//go:build unix

package cli

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// TestSSOUnderSudo: under sudo (HOME is root's), an SSO profile of the
// invoking user works: its `aws sso login` token is read from the user's
// ~/.aws/sso/cache, refreshed when expired, and the refreshed file is given
// back to the user rather than left to root.
func TestSSOUnderSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the refreshed token file is given back with chown")
	}
	var mu sync.Mutex
	var bearer []string
	aws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/token": // SSO OIDC CreateToken
			var req struct{ GrantType, RefreshToken string }
			json.NewDecoder(r.Body).Decode(&req)
			if req.GrantType != "refresh_token" || req.RefreshToken != "refresh-1" {
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, `{"accessToken":"access-2","expiresIn":3600,"tokenType":"Bearer","refreshToken":"refresh-2"}`)
		case r.URL.Path == "/federation/credentials": // SSO GetRoleCredentials
			mu.Lock()
			bearer = append(bearer, r.Header.Get("X-Amz-Sso_bearer_token"))
			mu.Unlock()
			fmt.Fprintf(w, `{"roleCredentials":{"accessKeyId":"AKIDSSO","secretAccessKey":"secret","sessionToken":"session","expiration":%d}}`,
				time.Now().Add(time.Hour).UnixMilli())
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		}
	}))
	defer aws.Close()

	dir := t.TempDir()
	root, home := filepath.Join(dir, "root"), filepath.Join(dir, "home")
	cache := filepath.Join(home, ".aws", "sso", "cache")
	os.MkdirAll(cache, 0o700)
	os.MkdirAll(root, 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "config"), []byte(`[profile work]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Dev
region = eu-west-1

[sso-session corp]
sso_start_url = https://corp.example/start
sso_region = eu-west-1
`), 0o600)
	sum := sha1.Sum([]byte("corp"))
	tokenFile := filepath.Join(cache, hex.EncodeToString(sum[:])+".json")
	expired := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	later := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	os.WriteFile(tokenFile, []byte(`{"accessToken":"access-1","expiresAt":"`+expired+`","refreshToken":"refresh-1",`+
		`"clientId":"client","clientSecret":"secret","registrationExpiresAt":"`+later+`","region":"eu-west-1","startUrl":"https://corp.example/start"}`), 0o600)
	const uid, gid = 4242, 4343
	for _, p := range []string{home, filepath.Join(home, ".aws"), filepath.Join(home, ".aws", "sso"), cache, tokenFile} {
		os.Chown(p, uid, gid) // the user's, as aws sso login leaves them
	}

	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", root) // sudo's
	t.Setenv("AWS_ENDPOINT_URL_SSO", aws.URL)
	t.Setenv("AWS_ENDPOINT_URL_SSO_OIDC", aws.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	cfg, err := awsConfig(t.Context(), &upOptions{profile: "work"}, invoker{UID: uid, GID: gid, Home: home})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKIDSSO" {
		t.Fatalf("credentials from the user's SSO login: %v, %v", creds.AccessKeyID, err)
	}
	mu.Lock()
	if len(bearer) != 1 || bearer[0] != "access-2" {
		t.Errorf("GetRoleCredentials saw tokens %q, want the refreshed access-2", bearer)
	}
	mu.Unlock()
	b, _ := os.ReadFile(tokenFile)
	if !strings.Contains(string(b), "access-2") {
		t.Errorf("the user's token file after the refresh: %s", b)
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uid {
		t.Errorf("the refreshed token file is not the user's (%v): their own aws commands could not read it", err)
	}
	if _, err := os.Stat(filepath.Join(root, ".aws")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root's home got an .aws: %v", err)
	}
}

// TestSudoHint: errors that a dropped AWS_PROFILE or AWS_REGION explains say
// so under sudo, and only then.
func TestSudoHint(t *testing.T) {
	t.Setenv("AWS_PROFILE", "")
	sudo := invoker{UID: 1000, GID: 1000}
	denied := &ssm.SessionError{Kind: ssm.ErrCredentialsExpired, Msg: "AWS credentials expired: refresh them"}
	for _, tt := range []struct {
		err  error
		o    upOptions
		inv  invoker
		hint bool
	}{
		{errNoRegion, upOptions{}, sudo, true},
		{denied, upOptions{}, sudo, true},
		{denied, upOptions{profile: "work"}, sudo, false},
		{denied, upOptions{}, invoker{UID: -1}, false},
		{errors.New("connection refused"), upOptions{}, sudo, false},
	} {
		err := sudoHint(tt.err, &tt.o, tt.inv)
		if got := strings.Contains(err.Error(), "under sudo"); got != tt.hint || !errors.Is(err, tt.err) {
			t.Errorf("sudoHint(%v, profile %q, uid %d) = %v; want hint %v, the error kept", tt.err, tt.o.profile, tt.inv.UID, err, tt.hint)
		}
	}
}

// TestGiveFileBack: a token file root wrote is given to the user only when
// it is a plain file of one link, reached without a symbolic link, in a
// directory of theirs.
func TestGiveFileBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown")
	}
	const uid, gid = 4242, 4343
	dir := t.TempDir()
	mine, roots := filepath.Join(dir, "mine"), filepath.Join(dir, "roots")
	os.Mkdir(mine, 0o700)
	os.Mkdir(roots, 0o700)
	os.Chown(mine, uid, gid)
	write := func(p string) string { os.WriteFile(p, []byte("{}"), 0o600); return p }
	plain := write(filepath.Join(mine, "plain.json"))
	inRoots := write(filepath.Join(roots, "token.json"))
	linked := write(filepath.Join(mine, "linked.json"))
	os.Link(linked, filepath.Join(roots, "other-name"))
	target := write(filepath.Join(roots, "target"))
	symlink := filepath.Join(mine, "symlink.json")
	os.Symlink(target, symlink)

	for _, p := range []string{plain, inRoots, linked, symlink} {
		giveFileBack(p, uid, gid)
	}
	owner := func(p string) uint32 {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Uid
	}
	for p, want := range map[string]uint32{plain: uid, inRoots: 0, linked: 0, target: 0} {
		if got := owner(p); got != want {
			t.Errorf("%s: owner %d, want %d", filepath.Base(p), got, want)
		}
	}
}
