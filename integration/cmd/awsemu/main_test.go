package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/awsemu"
)

func TestParseInstances(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr bool
	}{
		{"two", []string{"i-01=10.0.0.1:22", "i-02=[::1]:2222"}, map[string]string{"i-01": "10.0.0.1:22", "i-02": "[::1]:2222"}, false},
		{"no equals", []string{"i-01"}, nil, true},
		{"not an instance", []string{"x-01=h:22"}, nil, true},
		{"empty dest", []string{"i-01="}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseInstances(tt.in)
			if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
				t.Fatalf("got %v %v", got, err)
			}
		})
	}
}

func TestParseFrameFaults(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    awsemu.FrameFaults
		wantErr bool
	}{
		{name: "none", in: ""},
		{name: "every nth and probability", in: "drop-out=1/50&dup-in=0.25",
			want: awsemu.FrameFaults{DropOut: awsemu.Rate{Every: 50}, DupIn: awsemu.Rate{P: 0.25}}},
		{name: "ack delay and seed", in: "ack-delay=300ms&seed=7",
			want: awsemu.FrameFaults{AckDelay: 300 * time.Millisecond, Seed: 7}},
		{name: "unknown knob", in: "lose=1/2", wantErr: true},
		{name: "session is admin only", in: "session=x", wantErr: true},
		{name: "bad rate", in: "drop-in=2", wantErr: true},
		{name: "bad query", in: "drop-in=%zz", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFrameFaults(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseFrameFaults(%q) = %+v, %v", tt.in, got, err)
			}
		})
	}
}

func TestServeAndAuthorizedKeys(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"serve", "--listen", addr, "--state-dir", dir, "--pacing", "none",
			"--instance", "i-0123456789abcdef0=127.0.0.1:22", "--access-key", "AKID", "--secret-key", "SECRET"})
	}()
	ca := filepath.Join(dir, "ca.pem")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ca); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ca.pem")
		}
	}
	err = run(context.Background(), []string{"authorized-keys", "--endpoint", "https://" + addr, "--ca", ca,
		"--instance", "i-0123456789abcdef0", "ec2-user"})
	if err != nil {
		t.Fatalf("authorized-keys: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := run(context.Background(), []string{"serve", "--pacing", "fast"}); err == nil {
		t.Fatal("bad flags accepted")
	}
	err = run(context.Background(), []string{"serve", "--state-dir", dir, "--frame-faults", "drop=1"})
	if err == nil || !strings.Contains(err.Error(), "--frame-faults") {
		t.Fatalf("bad --frame-faults: %v", err)
	}
}
