// Package awsemu emulates the AWS side of vpcvpn's SSM and EC2 Instance
// Connect paths for tests: an HTTPS endpoint that verifies SigV4 and serves
// AmazonSSM StartSession/ResumeSession/TerminateSession/DescribeSessions and
// AWSEC2InstanceConnectService.SendSSHPublicKey over AWS JSON 1.1, and the
// ssmmessages data channel (WebSocket).
//
// An instance is served either by AWS's real SSM agent, for which awsemu
// is the service side the agent talks to (EC2 instance metadata, the SSM
// and ec2messages calls it makes, Session Manager's control and data
// channels; see README.md) and relays frames between client and agent
// (relay.go), or by a built-in agent personality in Basic port mode that
// relays to a configured HOST:PORT itself. An admin endpoint injects
// faults: broken WebSockets on either side, delays, terminations, API
// errors, an agent offline, and, with the built-in agent, frame-level
// faults of the data channel (lost, duplicated, reordered frames, late
// acks, paused publication; see FrameFaults and admin.go).
//
// It is an independent implementation written from SSM-PROTOCOL.md: it
// shares no code with tunnel/ssm, so a codec bug on either side shows up as
// a failed test instead of cancelling out.
//
//	client --JSON 1.1 + SigV4--> jsonapi --> ssmapi/eic
//	client --wss data channel--> datachannel --> relay --> real agent's data channel
//	real agent --IMDS, SSM, MGS control channel--> imds, agentapi, mgs
//	client --wss data channel--> datachannel --> inject (faults) --> session (acks, resend) --> agent --> TCP HOST:PORT
package awsemu
