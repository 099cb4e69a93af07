// Package lab builds a small AWS-like network out of Linux network namespaces
// and real daemons, for vpcvpn's integration tests, benchmarks and demo:
//
//	laptop 198.18.0.1/24 ── bastion 198.18.0.2/24 (OpenSSH sshd, ip_forward off)
//	                         bastion 10.77.0.1/24 ── vpc 10.77.0.10/24 (PostgreSQL, test servers)
//
// The laptop has no route to the VPC (10.77.0.0/16); only sshd on the bastion
// connects onward, so anything that reaches the VPC from the laptop went
// through an SSH connection to the bastion. Each lab has a unique name prefix,
// its own /etc/netns/<ns> resolver files and its own temporary directory, and
// Close removes all of it. Nothing is created in the machine's own network
// namespace, so no traffic leaves the lab except on loopback.
//
// sshd accepts the lab's key for root: the lab cannot create system users.
// Building a lab needs root, /dev/net/tun, OpenSSH, PostgreSQL and iproute2;
// [Missing] reports what is absent so tests can skip with a reason.
package lab
