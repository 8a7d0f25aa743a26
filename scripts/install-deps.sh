#!/usr/bin/env bash
# Installs every build, test and demo dependency of SAW broker on a Debian 12 machine.
# Idempotent; safe to run as root on a fresh machine (CI does).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
  build-essential cmake pkg-config git clang clang-format
  libssh-dev libssl-dev liboauth2-dev libcjose-dev libjansson-dev
  libcurl4-openssl-dev libevent-dev libsqlite3-dev sqlite3 libpam0g-dev
  libseccomp-dev libcmocka-dev
  openssh-client openssh-server
  curl iproute2 procps psmisc python3 nodejs npm
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_ apt-get update -q
  $sudo_ apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The test IdP (oidc-provider), pinned by tests/idp/package-lock.json.
if [ ! -d "$here/tests/idp/node_modules/oidc-provider" ]; then
  (cd "$here/tests/idp" && npm ci --no-audit --no-fund --loglevel=error)
fi
