package awsemu

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var testCreds = credentials{AccessKey: "AKIDEXAMPLE", Secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "eu-west-1"}

// signedRequest returns a JSON-1.1 request signed by the SDK's v4 signer.
func signedRequest(t *testing.T, url, akid, secret, service, region string, at time.Time, body []byte, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", target)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hashHex(body), service, region, at); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerifySigV4(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"Target":"i-0123456789abcdef0"}`)
	const u = "https://127.0.0.1:8443/?b=2&a=x%2By%2Fz%3D&a=1"
	tests := []struct {
		name     string
		akid     string
		secret   string
		service  string
		region   string
		at       time.Time
		tamper   func(*http.Request)
		wantType string
	}{
		{name: "ok", at: now},
		{name: "ok skew 14m", at: now.Add(-14 * time.Minute)},
		{name: "expired", at: now.Add(-16 * time.Minute), wantType: "InvalidSignatureException"},
		{name: "future", at: now.Add(16 * time.Minute), wantType: "InvalidSignatureException"},
		{name: "wrong secret", secret: "nope", at: now, wantType: "InvalidSignatureException"},
		{name: "unknown key", akid: "AKIDOTHER", at: now, wantType: "UnrecognizedClientException"},
		{name: "wrong service", service: "ec2-instance-connect", at: now, wantType: "InvalidSignatureException"},
		{name: "wrong region", region: "us-east-1", at: now, wantType: "InvalidSignatureException"},
		{name: "tampered target", at: now, tamper: func(r *http.Request) { r.Header.Set("X-Amz-Target", "AmazonSSM.TerminateSession") }, wantType: "InvalidSignatureException"},
		{name: "no auth", at: now, tamper: func(r *http.Request) { r.Header.Del("Authorization") }, wantType: "MissingAuthenticationTokenException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			akid, secret, svc, reg := or(tt.akid, testCreds.AccessKey), or(tt.secret, testCreds.Secret), or(tt.service, "ssm"), or(tt.region, testCreds.Region)
			r := signedRequest(t, u, akid, secret, svc, reg, tt.at, body, "AmazonSSM.StartSession")
			if tt.tamper != nil {
				tt.tamper(r)
			}
			// Server side sees Host in r.Host; the SDK signed r.URL.Host.
			r.Host = r.URL.Host
			err := verifySigV4(r, body, testCreds, "ssm", now)
			var ae *authError
			switch {
			case tt.wantType == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case tt.wantType != "" && (!errors.As(err, &ae) || ae.Type != tt.wantType):
				t.Fatalf("verify: got %v, want %s", err, tt.wantType)
			}
		})
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
