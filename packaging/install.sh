#!/usr/bin/env bash
# Builds netext and installs it as packaging/README.md describes, under
# $DESTDIR (default /). Run from anywhere, as root for a real install:
#   sudo packaging/install.sh
#   DESTDIR=/tmp/stage packaging/install.sh     # a staging tree, no systemd calls
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${DESTDIR:-}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -trimpath -o "$bin/" ./cmd/netextd ./cmd/netext ./cmd/netext-provider-sample ./cmd/netext-provider-wireguard

install -D -m 0755 "$bin/netextd" "$dest/usr/sbin/netextd"
install -D -m 0755 "$bin/netext" "$dest/usr/bin/netext"
install -D -m 0755 "$bin/netext-provider-sample" "$dest/usr/lib/netext/netext-provider-sample"
install -D -m 0644 packaging/providers.d/org.netext.sample.json "$dest/usr/lib/netext/providers.d/org.netext.sample.json"
install -D -m 0755 "$bin/netext-provider-wireguard" "$dest/usr/lib/netext/netext-provider-wireguard"
install -D -m 0644 packaging/providers.d/org.netext.wireguard.json "$dest/usr/lib/netext/providers.d/org.netext.wireguard.json"
install -d -m 0755 "$dest/etc/netext/providers.d"
install -D -m 0644 packaging/netextd.service "$dest/usr/lib/systemd/system/netextd.service"
install -D -m 0644 packaging/netext.sysusers "$dest/usr/lib/sysusers.d/netext.conf"

if [ -z "$dest" ] && [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null; then
	systemd-sysusers /usr/lib/sysusers.d/netext.conf
	systemctl daemon-reload
	echo "installed; start with: systemctl enable --now netextd"
fi
