package awsemu

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// TestDescribeSessions: the SDK reads back each session with the Reason
// StartSession was given, Active until it is terminated, then History.
func TestDescribeSessions(t *testing.T) {
	s := newTestServer(t)
	c := ssmClient(t, s)
	ctx := context.Background()
	out, err := c.StartSession(ctx, &ssm.StartSessionInput{
		Target: aws.String(testInstance), DocumentName: aws.String(sshDocument), Reason: aws.String("INC-1234 on-call"),
	})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := startSSH(t, c, testInstance)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(state types.SessionState, filters ...types.SessionFilter) []types.Session {
		t.Helper()
		d, err := c.DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: state, Filters: filters})
		if err != nil {
			t.Fatalf("DescribeSessions %s: %v", state, err)
		}
		return d.Sessions
	}
	active := describe(types.SessionStateActive)
	if len(active) != 2 || aws.ToString(active[1].SessionId) != aws.ToString(out.SessionId) {
		t.Fatalf("Active = %+v, want both sessions, newest first", active)
	}
	got := active[1]
	if aws.ToString(got.Reason) != "INC-1234 on-call" || aws.ToString(got.Target) != testInstance ||
		got.Status != types.SessionStatusConnected || got.StartDate == nil || aws.ToString(got.DocumentName) != sshDocument {
		t.Errorf("session = %+v, want the reason, target, document, start date, Connected", got)
	}
	if active[0].Reason != nil {
		t.Errorf("a session started without a reason has Reason %q", aws.ToString(active[0].Reason))
	}
	if _, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: out.SessionId}); err != nil {
		t.Fatal(err)
	}
	byID := types.SessionFilter{Key: types.SessionFilterKeySessionId, Value: out.SessionId}
	if l := describe(types.SessionStateActive, byID); len(l) != 0 {
		t.Errorf("Active after TerminateSession = %+v, want none", l)
	}
	if l := describe(types.SessionStateHistory, byID); len(l) != 1 || l[0].Status != types.SessionStatusTerminated || aws.ToString(l[0].Reason) != "INC-1234 on-call" {
		t.Errorf("History = %+v, want the terminated session with its reason", l)
	}
	if l := describe(types.SessionStateActive); len(l) != 1 || aws.ToString(l[0].SessionId) != aws.ToString(plain.SessionId) {
		t.Errorf("Active = %+v, want the other session only", l)
	}
}
