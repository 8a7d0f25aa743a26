#!/usr/bin/env bash
# Installs every build, test and demo dependency of SAW broker on a Debian 12 machine.
# Idempotent; safe to run as root on a fresh machine (CI does), with no terminal.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"

pkgs=(
  build-essential cmake pkg-config git
  # clang for the libFuzzer build; libFuzzer itself (libclang_rt.fuzzer*.a) ships in
  # libclang-rt-14-dev on Debian 12.
  clang clang-format libclang-rt-14-dev
  libssh-dev libssl-dev liboauth2-dev libcjose-dev libjansson-dev
  libcurl4-openssl-dev libevent-dev libsqlite3-dev sqlite3 libpam0g-dev
  libseccomp-dev libcmocka-dev
  openssh-client openssh-server
  curl openssl iproute2 procps psmisc python3 util-linux coreutils passwd
)
# Node (the test IdP) only when missing: a machine may have its own node that ships npm, and
# Debian's packages would fight with it.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_ apt-get update -q
  $sudo_ apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The account saw-brokerd drops to when started as root (also used by the e2e tests).
if ! getent passwd saw >/dev/null; then
  echo "install-deps: creating the 'saw' system user"
  $sudo_ useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin saw
fi

# sshd started by hand (tests, demo) needs its privilege-separation directory.
[ -d /run/sshd ] || $sudo_ install -d -m 0755 /run/sshd 2>/dev/null || true

# The test IdP (oidc-provider), pinned by tests/idp/package-lock.json.
if [ ! -f "$here/tests/idp/node_modules/oidc-provider/package.json" ]; then
  (cd "$here/tests/idp" && npm ci --no-audit --no-fund --loglevel=error)
fi
