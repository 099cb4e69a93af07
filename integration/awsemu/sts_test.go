package awsemu

import (
	"context"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestCallerIdentity: GetCallerIdentity names the account's user with
// the lab's keys, and with an instance's role credentials the role
// session named after that instance, each with a unique id shaped as
// IAM's (the value of ${aws:userid}, which --ephemeral tags its bastions
// with).
func TestCallerIdentity(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	id, err := stsClient(t, s).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != userARN || aws.ToString(id.Account) != accountID ||
		!regexp.MustCompile(`^AIDA[A-Z0-9]{17}$`).MatchString(aws.ToString(id.UserId)) {
		t.Errorf("the user: %s %s %s, want %s, an IAM user's id (AIDA and 17 more), %s",
			aws.ToString(id.Arn), aws.ToString(id.UserId), aws.ToString(id.Account), userARN, accountID)
	}

	c := s.issueCredentials("i-0123456789abcdef0") // as the instance's metadata does
	role := sts.New(sts.Options{
		Region: testCreds.Region, BaseEndpoint: aws.String(s.URL()), HTTPClient: httpClient(t, s),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: c.AccessKey, SecretAccessKey: c.Secret, SessionToken: c.Token}, nil
		}),
	})
	id, err = role.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:sts::" + accountID + ":assumed-role/lab-ssm/i-0123456789abcdef0"; aws.ToString(id.Arn) != want ||
		!regexp.MustCompile(`^AROA[A-Z0-9]{17}:i-0123456789abcdef0$`).MatchString(aws.ToString(id.UserId)) {
		t.Errorf("the instance's role: %s %s, want %s and a role id (AROA and 17 more):i-0123456789abcdef0",
			aws.ToString(id.Arn), aws.ToString(id.UserId), want)
	}
}
