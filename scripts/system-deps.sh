#!/usr/bin/env bash
# Installs the Debian packages the test suite uses when run as root; otherwise says what is missing.
set -euo pipefail
want=(mosquitto postgresql chromium fonts-liberation)
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  # A failed install must not fail the run: tests needing a missing package skip and say so.
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "warning: could not install ${missing[*]}; tests that need them will be skipped" >&2
  fi
else
  echo "not root: tests that need ${missing[*]} will be skipped" >&2
fi
