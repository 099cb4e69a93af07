//go:build linux

package lab

import (
	"reflect"
	"testing"
)

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       AWSEvent
	}{
		{"call", `time=2026-01-02T03:04:05.000Z level=INFO msg=call component=awsemu target=AmazonSSM.ResumeSession`,
			AWSEvent{"time": "2026-01-02T03:04:05.000Z", "level": "INFO", "msg": "call", "component": "awsemu", "target": "AmazonSSM.ResumeSession"}},
		{"quoted", `level=INFO msg="data channel: open" session=awsemu-0a1 query="session=a \"b\""`,
			AWSEvent{"level": "INFO", "msg": "data channel: open", "session": "awsemu-0a1", "query": `session=a "b"`}},
		{"empty value", `msg="session ended" output=""`, AWSEvent{"msg": "session ended", "output": ""}},
		{"not slog", `2026/01/02 03:04:05 http: TLS handshake error from 198.18.0.1:5: EOF`, AWSEvent{}},
		{"unterminated quote", `msg="data channel`, AWSEvent{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseLogLine(tt.line); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseLogLine(%q) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}
