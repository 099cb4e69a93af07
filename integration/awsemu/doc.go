// Package awsemu emulates the AWS side of vpcvpn's SSM and EC2 Instance
// Connect paths for tests: an HTTPS endpoint that verifies SigV4 and serves
// AmazonSSM StartSession/ResumeSession/TerminateSession and
// AWSEC2InstanceConnectService.SendSSHPublicKey over AWS JSON 1.1, plus the
// ssmmessages data channel (WebSocket) with an agent personality in Basic
// port mode that relays to a configured HOST:PORT. An admin endpoint
// injects faults: broken WebSockets, API errors, and frame-level faults
// of the data channel (lost, duplicated, reordered frames, late acks,
// paused publication; see FrameFaults and admin.go).
//
// It is an independent implementation written from SSM-PROTOCOL.md: it
// shares no code with tunnel/ssm, so a codec bug on either side shows up as
// a failed test instead of cancelling out.
//
//	client --JSON 1.1 + SigV4--> jsonapi --> ssmapi/eic
//	client --wss data channel--> datachannel --> inject (faults) --> session (acks, resend) --> agent --> TCP HOST:PORT
package awsemu
