#!/bin/sh
# System packages the test suite needs beyond the virtualenv: Debian's stunnel4 puts TLS in front
# of the local broker for the TLS tests. Idempotent: does nothing when stunnel is already there.
set -eu

if command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "stunnel4 is missing and this is not root: install it (apt-get install stunnel4)" \
        "or the TLS tests will fail" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "stunnel4 is missing and there is no apt-get: install stunnel with this system's" \
        "package manager or the TLS tests will fail" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq stunnel4 >/dev/null
