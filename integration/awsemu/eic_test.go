package awsemu

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func testPublicKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " test@awsemu"
}

func sendKey(t *testing.T, s *Server, instance, user, key string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(sendKeyInput{InstanceId: instance, InstanceOSUser: user, SSHPublicKey: key})
	r := signedRequest(t, s.URL()+"/", testCreds.AccessKey, testCreds.Secret, "ec2-instance-connect", testCreds.Region, time.Now(), body,
		"AWSEC2InstanceConnectService.SendSSHPublicKey")
	resp, err := httpClient(t, s).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestSendSSHPublicKey(t *testing.T) {
	s := newTestServer(t)
	var mu sync.Mutex
	now := time.Now()
	s.mu.Lock()
	s.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s.mu.Unlock()
	key := testPublicKey(t)
	tests := []struct {
		name, instance, user, key string
		status                    int
		errType                   string
	}{
		{"ok", testInstance, "ec2-user", key, 200, ""},
		{"bad user", testInstance, "1bad user", key, 400, "InvalidArgsException"},
		{"bad key", testInstance, "ec2-user", strings.Repeat("x", 100), 400, "InvalidArgsException"},
		{"unknown instance", "i-00000000deadbeef", "ec2-user", key, 400, "EC2InstanceNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := sendKey(t, s, tt.instance, tt.user, tt.key)
			if status != tt.status || (tt.errType != "" && out["__type"] != tt.errType) || (tt.errType == "" && out["Success"] != true) {
				t.Fatalf("got %d %v", status, out)
			}
		})
	}
	keys, err := FetchAuthorizedKeys(context.Background(), s.URL(), s.CAPEM(), testInstance, "ec2-user")
	if err != nil || len(keys) != 1 || !strings.HasPrefix(key, keys[0]) {
		t.Fatalf("keys %q %v", keys, err)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	keys, err = FetchAuthorizedKeys(context.Background(), s.URL(), s.CAPEM(), testInstance, "ec2-user")
	if err != nil || len(keys) != 0 {
		t.Fatalf("after TTL: %q %v", keys, err)
	}
}
