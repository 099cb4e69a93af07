package awsemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// AWS JSON 1.1: POST / with X-Amz-Target "<Service>.<Operation>".

// apiError is an AWS JSON 1.1 error response.
type apiError struct {
	Status int
	Type   string
	Msg    string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Msg }

func badRequest(typ, format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, typ, fmt.Sprintf(format, args...)}
}

// operation handles one JSON 1.1 operation: body in, response value out.
type operation func(body []byte) (any, error)

// jsonService is one JSON 1.1 service: its target prefix, SigV4 signing
// name and operations.
type jsonService struct {
	Prefix  string // e.g. "AmazonSSM"
	Signing string // e.g. "ssm"
	Ops     map[string]operation
	// InstanceOps answer for the instance whose metadata's credentials
	// signed the call ("" for the account's own).
	InstanceOps map[string]func(instance string, body []byte) (any, error)
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request) {
	if isEC2Query(r) {
		s.serveEC2(w, r)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	prefix, op, _ := strings.Cut(target, ".")
	svc, ok := s.services[prefix]
	if r.Method != http.MethodPost || !ok {
		writeAPIError(w, badRequest("UnknownOperationException", "unknown target %q", target))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeAPIError(w, badRequest("SerializationException", "read body: %v", err))
		return
	}
	if err := s.verify(r, body, svc.Signing); err != nil {
		var ae *authError
		errors.As(err, &ae)
		s.log.Info("call rejected", "target", target, "error", ae.Type)
		writeAPIError(w, &apiError{ae.Status, ae.Type, ae.Msg})
		return
	}
	fn, ok := svc.Ops[op]
	if iop, isInstance := svc.InstanceOps[op]; isInstance {
		instance := s.signer(r).Instance
		fn, ok = func(body []byte) (any, error) { return iop(instance, body) }, true
	}
	if !ok {
		writeAPIError(w, badRequest("UnknownOperationException", "unknown operation %q", op))
		return
	}
	if d := s.latency(target); d > 0 { // a slow control plane (admin latency)
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	resp, err := fn(body)
	s.logCall(target, s.caller(r), err)
	if err != nil {
		writeAPIError(w, toAPIError(err))
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// logCall writes the "call" line of the log, saying who called: the
// account's user or the instance (its metadata's credentials).
func (s *Server) logCall(target, caller string, err error) {
	if err != nil {
		s.log.Info("call", "target", target, "caller", caller, "error", err)
		return
	}
	s.log.Info("call", "target", target, "caller", caller)
}

func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()}
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]string{"__type": e.Type, "message": e.Msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", newUUID().String())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeBody unmarshals a request body into v as a SerializationException.
func decodeBody(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("SerializationException", "decode request: %v", err)
	}
	return nil
}
