#!/usr/bin/env bash
# Installs the Debian packages of the real peers the tests talk to: Python websockets,
# headless Chromium, and the NATS server the chat demo's cluster tests run against. Runs
# as root (as on CI); elsewhere it says what is missing.
set -euo pipefail
need=()
/usr/bin/python3 -c "import websockets" 2>/dev/null || need+=(python3-websockets)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null || need+=(nats-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "tests/peers/install.sh: missing ${need[*]}; install with: sudo apt-get install -y ${need[*]}" >&2
  exit 0
fi
echo "installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
