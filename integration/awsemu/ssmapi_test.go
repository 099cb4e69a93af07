package awsemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

func TestStartSessionSDK(t *testing.T) {
	s := newTestServer(t)
	c := ssmClient(t, s)
	out, err := startSSH(t, c, testInstance)
	if err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	url := aws.ToString(out.StreamUrl)
	if !strings.HasPrefix(url, "wss://"+s.Addr()+"/v1/data-channel/"+aws.ToString(out.SessionId)+"?role=publish_subscribe&cell-number=") ||
		!strings.ContainsAny(url, "+") || !strings.Contains(url, "/") || !strings.HasSuffix(url, "=") {
		t.Errorf("StreamUrl %q", url)
	}
	if aws.ToString(out.TokenValue) == "" {
		t.Error("no TokenValue")
	}
	ctx := context.Background()
	res, err := c.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: out.SessionId})
	if err != nil || aws.ToString(res.TokenValue) == "" || aws.ToString(res.TokenValue) == aws.ToString(out.TokenValue) {
		t.Fatalf("ResumeSession: %v %+v", err, res)
	}
	if _, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: out.SessionId}); err != nil {
		t.Fatalf("TerminateSession: %v", err)
	}
	res, err = c.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: out.SessionId})
	if err != nil || res.TokenValue != nil {
		t.Fatalf("ResumeSession after terminate: %v token=%v", err, res.TokenValue)
	}
	di, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(di.InstanceInformationList) != 2 || aws.ToString(di.InstanceInformationList[0].InstanceId) != testInstance {
		t.Fatalf("DescribeInstanceInformation: %v %+v", err, di)
	}
}

func TestStartSessionErrors(t *testing.T) {
	s := newTestServer(t)
	c := ssmClient(t, s)
	post(t, s, "fault?target=i-00000000000000aa&error=AccessDenied")
	tests := []struct {
		name, target, code string
	}{
		{"unknown target", "i-00000000deadbeef", "TargetNotConnected"},
		{"disconnected", offlineTarget, "TargetNotConnected"},
		{"injected", "i-00000000000000aa", "AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := startSSH(t, c, tt.target)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tt.code {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}
}

func TestJSONAuthErrors(t *testing.T) {
	s := newTestServer(t)
	hc := httpClient(t, s)
	body := []byte(`{"Target":"` + testInstance + `","DocumentName":"AWS-StartSSHSession"}`)
	tests := []struct {
		name, akid, secret, wantType string
		status                       int
	}{
		{"bad signature", testCreds.AccessKey, "wrong", "InvalidSignatureException", 403},
		{"unknown key", "AKIDUNKNOWN", testCreds.Secret, "UnrecognizedClientException", 403},
		{"ok", testCreds.AccessKey, testCreds.Secret, "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signedRequest(t, s.URL()+"/", tt.akid, tt.secret, "ssm", testCreds.Region, time.Now(), body, "AmazonSSM.StartSession")
			resp, err := hc.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e map[string]string
			b, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != tt.status || e["__type"] != tt.wantType {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
			if tt.wantType == "InvalidSignatureException" && !strings.HasPrefix(e["message"], "The request signature we calculated does not match") {
				t.Fatalf("message %q", e["message"])
			}
		})
	}
}

// post calls an admin action.
func post(t *testing.T, s *Server, action string) {
	t.Helper()
	resp, err := httpClient(t, s).Post(s.URL()+adminPath+action, "text/plain", bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("admin %s: %s", action, resp.Status)
	}
}

// TestStartSessionThrottled sets the Throttling fault with after=2: two
// starts pass, the next ones fail as the service's JSON protocol fails
// them (HTTP 400, __type ThrottlingException), and clearing the fault
// lets starts pass again.
func TestStartSessionThrottled(t *testing.T) {
	s := newTestServer(t)
	c := ssmClient(t, s)
	post(t, s, "fault?target="+testInstance+"&error=Throttling&after=2")
	noRetry := func(o *ssm.Options) { o.RetryMaxAttempts = 1 }
	start := func() error {
		_, err := c.StartSession(context.Background(), &ssm.StartSessionInput{
			Target: aws.String(testInstance), DocumentName: aws.String(sshDocument),
		}, noRetry)
		return err
	}
	for i := range 2 {
		if err := start(); err != nil {
			t.Fatalf("start %d of the 2 let pass: %v", i+1, err)
		}
	}
	for i := range 2 {
		err := start()
		var re *awshttp.ResponseError
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" || ae.ErrorMessage() != "Rate exceeded" ||
			!errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
			t.Fatalf("start %d after the 2: %v; want HTTP 400 ThrottlingException: Rate exceeded", i+3, err)
		}
	}
	if err := start(); err == nil || !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Errorf("the SDK does not take %v for throttling", err)
	}
	post(t, s, "fault?target="+testInstance+"&error=")
	if err := start(); err != nil {
		t.Fatalf("start after the fault was cleared: %v", err)
	}
}

func TestAdminFaultBadInput(t *testing.T) {
	s := newTestServer(t)
	for _, q := range []string{
		"fault?target=" + testInstance + "&error=Busy",
		"fault?target=" + testInstance + "&error=Throttling&after=-1",
		"fault?target=" + testInstance + "&error=Throttling&after=x",
		"fault?error=Throttling",
	} {
		resp, err := httpClient(t, s).Post(s.URL()+adminPath+q, "text/plain", bytes.NewReader(nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("admin %s: %s, want 400", q, resp.Status)
		}
	}
}
