#!/bin/sh
# System packages the test suite needs beyond the virtualenv: Debian's stunnel4 puts TLS in front
# of the local broker for the TLS tests, and Debian's Chromium runs the browser tests (Playwright's
# own browser download does not work offline). Idempotent: installs only what is missing.
set -eu

missing=""
if ! command -v stunnel4 >/dev/null 2>&1 && ! command -v stunnel >/dev/null 2>&1; then
    missing="$missing stunnel4"
fi
if [ ! -x /usr/bin/chromium ]; then
    missing="$missing chromium"
fi
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing:$missing; this is not root: install them (apt-get install$missing)" \
        "or the TLS and browser tests will fail" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing:$missing and there is no apt-get: install them with this system's" \
        "package manager or the TLS and browser tests will fail" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the list is meant to split into package names
apt-get install -y -qq $missing >/dev/null
