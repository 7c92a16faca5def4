#!/usr/bin/env bash
# Installs the Debian packages the test suite uses (mosquitto, PostgreSQL, Chromium, npm) when run as root;
# otherwise says what is missing.
set -euo pipefail
want=(mosquitto postgresql chromium fonts-liberation)
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# The panel's map library is built from npm; any Node.js with npm will do, Debian's if there is none.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
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
