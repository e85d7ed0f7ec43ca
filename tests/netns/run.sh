#!/usr/bin/env bash
# Runs the netns vitest project (the network guard against hostile destinations) inside a
# fresh network and mount namespace, so that whatever the code under test does, nothing
# can leave the machine:
#   - the only interface is loopback, plus 93.184.216.34/32 on it: a "public" address that
#     exists only in here, so the guard has something it must let through;
#   - /etc/hosts gains names for loopback and for that address (the hosts-file cases);
#   - /etc/resolv.conf points at the suite's own DNS server on 127.0.0.1 (global-setup.ts).
# Needs root (unshare, ip). Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/netns/run.sh needs root (unshare --net --mount)" >&2
  exit 1
fi
for tool in unshare ip mount; do
  command -v "$tool" >/dev/null || { echo "tests/netns/run.sh needs '$tool' (Debian: util-linux, iproute2, mount)" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
{
  cat /etc/hosts
  echo "127.0.0.1 canary.switchboard.test"
  echo "::1 canary6.switchboard.test"
  echo "93.184.216.34 public.switchboard.test mail.switchboard.test"
} >"$work/hosts"
echo "nameserver 127.0.0.1" >"$work/resolv.conf"

# The mount namespace keeps the bind mounts (and the host's files) private to this run.
unshare --net --mount --propagation private -- bash -euo pipefail -c '
  ip link set lo up
  ip addr add 93.184.216.34/32 dev lo
  mount --bind "$1/hosts" /etc/hosts
  mount --bind "$1/resolv.conf" /etc/resolv.conf
  shift
  SWITCHBOARD_NETNS_ISOLATED=1 npx vitest run --project netns "$@"
' netns "$work" "$@"
