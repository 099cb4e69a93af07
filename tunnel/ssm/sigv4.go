package ssm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// emptySHA256 is the hex SHA-256 of an empty payload.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// presignKeys are the query keys of a presigned StreamUrl (§2.1).
var presignKeys = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}

// SigV4Header returns a Config.Header hook that SigV4-signs the WebSocket
// upgrade as the reference client does since 1.2.764.0 (§2.1): GET
// StreamURL, service ssmmessages, region, an empty payload, credentials
// from creds. A presigned StreamURL is not signed again. Signing is
// optional for the service, so a failure is only logged (nil log
// discards) and the upgrade goes unsigned.
func SigV4Header(creds aws.CredentialsProvider, region string, log *slog.Logger) func(ctx context.Context, streamURL string) (http.Header, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "ssm")
	return func(ctx context.Context, streamURL string) (http.Header, error) {
		if presigned(streamURL) {
			return nil, nil
		}
		h, err := signUpgrade(ctx, creds, region, streamURL)
		if err != nil {
			log.Warn("not signing the data channel upgrade", "err", err)
			return nil, nil
		}
		return h, nil
	}
}

// presigned reports whether streamURL carries a SigV4 query signature.
func presigned(streamURL string) bool {
	u, err := url.Parse(streamURL)
	if err != nil {
		return false
	}
	q, _ := url.ParseQuery(u.RawQuery) // read only: the URL is used verbatim
	for _, k := range presignKeys {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// signUpgrade returns the SigV4 headers of GET streamURL.
func signUpgrade(ctx context.Context, creds aws.CredentialsProvider, region, streamURL string) (http.Header, error) {
	if creds == nil {
		return nil, fmt.Errorf("no credentials")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	if err != nil {
		return nil, err
	}
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	if err := v4.NewSigner().SignHTTP(ctx, c, req, emptySHA256, "ssmmessages", region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	h := http.Header{}
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := req.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	return h, nil
}
