package dnsproxy

import "errors"

var (
	// errConnLost means an upstream connection failed before the answer
	// came; the query may be retried on another connection.
	errConnLost = errors.New("dnsproxy: upstream connection lost")

	// errStalled closes an upstream connection on which a query timed out
	// with no answer at all read since it was sent.
	errStalled = errors.New("dnsproxy: upstream connection stalled")

	// errMismatch means an answer did not answer the question asked.
	errMismatch = errors.New("dnsproxy: answer does not match the question")
)
