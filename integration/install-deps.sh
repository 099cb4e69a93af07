#!/bin/sh
# Installs what the lab, the integration tests, the benchmarks and the demo
# need, on Debian or Ubuntu. Run as root. Already-installed packages are kept.
set -eu
# gcc and libc6-dev: go test -race needs cgo.
pkgs="openssh-server openssh-client postgresql postgresql-client iperf3 sshuttle
dnsmasq-base iproute2 iptables netcat-openbsd procps ca-certificates make gcc libc6-dev
awscli"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: everything is installed"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$missing; run as root (sudo make deps)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
