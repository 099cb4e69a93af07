package eic

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// verifyPresigned checks a presigned GET of path on host as the endpoint
// would, written from the SigV4 specification rather than with the SDK:
// the signature over the canonical request, the credential scope, and the
// expiry at now.
func verifyPresigned(host, path, rawQuery, secret, region string, now time.Time) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return err
	}
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-SignedHeaders") != "host" {
		return fmt.Errorf("algorithm %q, signed headers %q", q.Get("X-Amz-Algorithm"), q.Get("X-Amz-SignedHeaders"))
	}
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	if q.Get("X-Amz-Expires") != "60" {
		return fmt.Errorf("X-Amz-Expires %q", q.Get("X-Amz-Expires"))
	}
	if now.Before(date.Add(-5*time.Minute)) || now.After(date.Add(60*time.Second)) {
		return fmt.Errorf("expired: signed %s, now %s", date, now)
	}
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	scope := strings.Join(cred[1:], "/")
	if len(cred) != 5 || scope != date.Format("20060102")+"/"+region+"/ec2-instance-connect/aws4_request" {
		return fmt.Errorf("credential scope %q", q.Get("X-Amz-Credential"))
	}
	var keys []string
	for k := range q {
		if k != "X-Amz-Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var cq []string
	for _, k := range keys {
		cq = append(cq, enc(k)+"="+enc(q.Get(k)))
	}
	creq := strings.Join([]string{"GET", path, strings.Join(cq, "&"), "host:" + host + "\n", "host", emptySHA256}, "\n")
	h := sha256.Sum256([]byte(creq))
	sts := "AWS4-HMAC-SHA256\n" + q.Get("X-Amz-Date") + "\n" + scope + "\n" + hex.EncodeToString(h[:])
	k := []byte("AWS4" + secret)
	for _, part := range cred[1:] {
		k = mac(k, part)
	}
	if want := hex.EncodeToString(mac(k, sts)); !hmac.Equal([]byte(want), []byte(q.Get("X-Amz-Signature"))) {
		return fmt.Errorf("signature mismatch")
	}
	return nil
}

func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// enc is SigV4's URI encoding: everything but unreserved characters.
func enc(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
