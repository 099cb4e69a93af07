package awsemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SigV4 verification, hand-written from the AWS Signature Version 4 spec:
// Authorization header → canonical request → string to sign → derived key.

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFmt   = "20060102T150405Z"
	maxClockSkew = 15 * time.Minute
)

// authError is an AWS-shaped authentication failure.
type authError struct {
	Status int
	Type   string
	Msg    string
}

func (e *authError) Error() string { return "sigv4: " + e.Type + ": " + e.Msg }

var (
	errMissingAuth = &authError{403, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	errUnknownKey  = &authError{403, "UnrecognizedClientException", "The security token included in the request is invalid."}
	errBadSig      = &authError{403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
)

// credentials is a key pair the emulator accepts: the account's, or
// temporary ones it issued through instance metadata (with a Token that
// the request must carry as X-Amz-Security-Token).
type credentials struct {
	AccessKey, Secret, Region string
	Token                     string
	// Instance is the instance whose metadata issued them, "" for the
	// account's own.
	Instance string
}

// authHeader is a parsed SigV4 Authorization header.
type authHeader struct {
	AccessKey, Date, Region, Service string
	SignedHeaders                    []string
	Signature                        string
}

func parseAuth(v string) (authHeader, error) {
	var a authHeader
	rest, ok := strings.CutPrefix(v, sigAlgorithm+" ")
	if !ok {
		return a, &authError{400, "IncompleteSignatureException", "Unsupported authorization algorithm"}
	}
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(val, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return a, &authError{400, "IncompleteSignatureException", "Credential is malformed: " + val}
			}
			a.AccessKey, a.Date, a.Region, a.Service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(val, ";")
		case "Signature":
			a.Signature = val
		}
	}
	if a.AccessKey == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return a, &authError{400, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature"}
	}
	return a, nil
}

// accessKeyOf returns the access key id of r's Authorization header, or "".
func accessKeyOf(r *http.Request) string {
	a, err := parseAuth(r.Header.Get("Authorization"))
	if err != nil {
		return ""
	}
	return a.AccessKey
}

// verifySigV4 checks r (whose body is body) against creds for service at now.
func verifySigV4(r *http.Request, body []byte, creds credentials, service string, now time.Time) error {
	v := r.Header.Get("Authorization")
	if v == "" {
		return errMissingAuth
	}
	a, err := parseAuth(v)
	if err != nil {
		return err
	}
	if a.AccessKey != creds.AccessKey {
		return errUnknownKey
	}
	if creds.Token != "" && r.Header.Get("X-Amz-Security-Token") != creds.Token {
		return &authError{403, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFmt, amzDate)
	if err != nil {
		return &authError{400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed"}
	}
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return &authError{403, "InvalidSignatureException", fmt.Sprintf(
			"Signature expired: %s is now earlier than %s", amzDate, now.Add(-maxClockSkew).UTC().Format(amzDateFmt))}
	}
	if err := checkScope(a, t, creds.Region, service); err != nil {
		return err
	}
	if !hasHost(a.SignedHeaders) {
		return errBadSig
	}
	cr := canonicalRequest(r, a.SignedHeaders, hashHex(body))
	scope := strings.Join([]string{a.Date, a.Region, a.Service, "aws4_request"}, "/")
	sts := strings.Join([]string{sigAlgorithm, amzDate, scope, hashHex([]byte(cr))}, "\n")
	want := hex.EncodeToString(hmacSHA256(signingKey(creds.Secret, a.Date, a.Region, a.Service), sts))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return errBadSig
	}
	return nil
}

func checkScope(a authHeader, t time.Time, region, service string) error {
	if a.Date != t.Format("20060102") {
		return &authError{403, "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP"}
	}
	if a.Region != region {
		return &authError{403, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", a.Region)}
	}
	if a.Service != service {
		return &authError{403, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service)}
	}
	return nil
}

func hasHost(signed []string) bool {
	for _, h := range signed {
		if h == "host" {
			return true
		}
	}
	return false
}

func canonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	var hdrs strings.Builder
	for _, h := range signed {
		hdrs.WriteString(h + ":" + headerValue(r, h) + "\n")
	}
	return strings.Join([]string{r.Method, path, canonicalQuery(r.URL.RawQuery),
		hdrs.String(), strings.Join(signed, ";"), payloadHash}, "\n")
}

// headerValue returns the canonical value of header h (lowercase name):
// values trimmed, inner runs of spaces collapsed, joined with ",".
func headerValue(r *http.Request, h string) string {
	switch h {
	case "host":
		return r.Host
	case "content-length":
		if r.Header.Get("Content-Length") == "" {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	}
	vals := r.Header.Values(h)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// canonicalQuery sorts the decoded parameters and re-encodes them with
// RFC 3986 escaping (space as %20), as the AWS signers do.
func canonicalQuery(raw string) string {
	q, _ := url.ParseQuery(raw)
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
