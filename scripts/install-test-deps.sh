#!/usr/bin/env bash
# Installs what the tests need beyond Go, with pinned versions. The tests call
# this themselves when something is missing, so `go test ./...` is enough on a
# fresh machine; running it by hand does no harm.
#   tmux   the terminal test drives the real binary in a real terminal
#   npm    interop/ pins the official Azure IoT Node SDKs in package-lock.json
#          (interop's TestMain runs `npm ci` itself)
set -euo pipefail
TMUX_VERSION=3.3a-3 # Debian 12 (bookworm)

if ! command -v tmux >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "tmux is missing: install tmux $TMUX_VERSION (needs root and apt-get)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "tmux=$TMUX_VERSION" ||
    { echo "tmux $TMUX_VERSION is not in this machine's apt sources; installing its tmux" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux; }
fi
tmux -V
