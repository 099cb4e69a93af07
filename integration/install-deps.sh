#!/bin/sh
# Installs what the lab, the integration tests, the benchmarks and the demo
# need, on Debian or Ubuntu, and builds AWS's SSM agent when its sources are
# beside the repository. Run as root. Already-installed packages are kept.
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
	echo "install-deps: every package is installed"
elif [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$missing; run as root (sudo make deps)" >&2
	exit 1
else
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi

# AWS's real SSM agent for the lab's instance, built (with Go, about a minute
# the first time) from the pinned sources beside the repository when they are
# there, into the cache where the lab looks (integration/lab.SSMAgentDir),
# with AWS's session-manager-plugin.
# Without them the lab runs awsemu's built-in agent and says so.
build="$(cd "$(dirname "$0")/.." && pwd)/../shared/thirdparty/build.sh"
if [ -f "$build" ] && [ -z "${VPCVPN_SSM_AGENT_DIR:-}" ]; then
	cache="${XDG_CACHE_HOME:-$HOME/.cache}/vpcvpn/ssm-agent"
	echo "install-deps: AWS's SSM agent into $cache"
	PATH="$PATH:/usr/local/go/bin" bash "$build" "$cache"
fi
