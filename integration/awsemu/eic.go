package awsemu

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// EC2 Instance Connect SendSSHPublicKey (§8.1): keys are kept in memory
// with their push time and listed for sshd's AuthorizedKeysCommand through
// the emulator-private keysPath for KeyTTL.

const keysPath = "/_awsemu/authorized-keys"

var (
	instanceIDRe = regexp.MustCompile(`^i-[a-f0-9]{8,30}$`)
	osUserRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9\@\._-]{0,30}[A-Za-z0-9\$_-]?$`)
)

type pushedKey struct {
	line string
	at   time.Time
}

type keyStore struct {
	ttl  time.Duration
	mu   sync.Mutex             // guards keys
	keys map[string][]pushedKey // instance + "/" + user → keys
}

func newKeyStore(ttl time.Duration) *keyStore {
	return &keyStore{ttl: ttl, keys: map[string][]pushedKey{}}
}

func (k *keyStore) push(instance, user, line string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := instance + "/" + user
	k.keys[id] = append(k.live(id, now), pushedKey{line, now})
}

// list returns the keys pushed within the TTL, oldest first.
func (k *keyStore) list(instance, user string, now time.Time) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := instance + "/" + user
	live := k.live(id, now)
	k.keys[id] = live
	out := make([]string, len(live))
	for i, p := range live {
		out[i] = p.line
	}
	return out
}

func (k *keyStore) live(id string, now time.Time) []pushedKey {
	var out []pushedKey
	for _, p := range k.keys[id] {
		if now.Sub(p.at) < k.ttl {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) eicService() jsonService {
	return jsonService{Prefix: "AWSEC2InstanceConnectService", Signing: "ec2-instance-connect",
		Ops: map[string]operation{"SendSSHPublicKey": s.sendSSHPublicKey}}
}

type sendKeyInput struct {
	InstanceId, InstanceOSUser, SSHPublicKey, AvailabilityZone string
}

func (s *Server) sendSSHPublicKey(body []byte) (any, error) {
	var in sendKeyInput
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	if !instanceIDRe.MatchString(in.InstanceId) || !osUserRe.MatchString(in.InstanceOSUser) ||
		len(in.SSHPublicKey) < 80 || len(in.SSHPublicKey) > 4096 {
		return nil, badRequest("InvalidArgsException", "invalid InstanceId, InstanceOSUser or SSHPublicKey")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(in.SSHPublicKey))
	if err != nil {
		return nil, badRequest("InvalidArgsException", "SSHPublicKey is not a valid OpenSSH public key")
	}
	if !s.instanceExists(in.InstanceId) {
		return nil, badRequest("EC2InstanceNotFoundException", "Instance %s not found", in.InstanceId)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	s.keys.push(s.keyInstance(in.InstanceId), in.InstanceOSUser, line, s.now())
	return map[string]any{"RequestId": newUUID().String(), "Success": true}, nil
}

// serveAuthorizedKeys answers GET keysPath?instance=…&user=… with one
// authorized_keys line per live key.
func (s *Server) serveAuthorizedKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	keys := s.keys.list(q.Get("instance"), q.Get("user"), s.now())
	w.Header().Set("Content-Type", "text/plain")
	for _, k := range keys {
		_, _ = w.Write([]byte(k + "\n"))
	}
}

// instanceExists reports whether id is an instance of the account, with
// the built-in agent or a real one, or running in EC2 (EC2 Instance
// Connect pushes keys to any).
func (s *Server) instanceExists(id string) bool {
	s.mu.Lock()
	_, builtin := s.cfg.Instances[id]
	known := builtin || s.agents[id] != nil
	s.mu.Unlock()
	if known {
		return true
	}
	in, ok := s.ec2.instance(id) // a running one, SSM managed or not
	return ok && in.State == "running"
}
