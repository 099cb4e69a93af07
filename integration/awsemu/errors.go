package awsemu

import "errors"

var (
	// errShortFrame reports a data-channel frame too short for its header.
	errShortFrame = errors.New("awsemu: frame too short")
	// errBadHeader reports a frame whose header fields are invalid.
	errBadHeader = errors.New("awsemu: invalid frame header")
	// errDigest reports a payload whose SHA-256 does not match the header.
	errDigest = errors.New("awsemu: payload digest mismatch")
)
