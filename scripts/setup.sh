# Sourced by the project's scripts: makes sure the tools the tests and the
# demo need are present on a Debian or Ubuntu machine, installing only what is
# missing. Go modules come through go.mod; the Go toolchain named in go.mod is
# fetched by the go command itself (GOTOOLCHAIN=auto) from the module proxy.

netext_apt_updated=
netext_apt() {
	if [ "$(id -u)" != 0 ]; then
		echo "setup: $* is missing; install it (as root: apt-get install $*)" >&2
		return 1
	fi
	if [ -z "$netext_apt_updated" ]; then
		apt-get update -qq
		netext_apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Go: the go command 1.21 or newer switches to the toolchain go.mod asks for.
# An older distribution go (Debian 12 ships 1.19) cannot, so it is used only
# to download that toolchain as a module and then steps aside.
netext_go_ok() {
	command -v go >/dev/null 2>&1 || return 1
	local v
	v=$(go env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	[ "${v%%.*}" -gt 1 ] || [ "$(echo "$v" | cut -d. -f2)" -ge 21 ]
}
if ! netext_go_ok && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
if ! netext_go_ok; then
	command -v go >/dev/null 2>&1 || netext_apt golang-go ca-certificates
	if ! netext_go_ok; then
		want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
		tc="golang.org/toolchain@v0.0.1-go${want}.linux-$(go env GOARCH)"
		echo "setup: fetching Go $want ($tc)" >&2
		(cd / && GOFLAGS=-mod=mod go mod download "$tc")
		goroot="$(go env GOMODCACHE)/$tc"
		# The module cache drops execute bits; the go command restores them
		# only for toolchains it switches to itself.
		chmod a+x "$goroot"/bin/* "$goroot"/pkg/tool/*/*
		export PATH="$goroot/bin:$PATH"
	fi
fi
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

# iproute2: tests use `ip` to inspect namespaces (the product never does).
command -v ip >/dev/null 2>&1 || netext_apt iproute2

# nftables: tests inspect the firewall package's table with `nft` (the product
# talks to the kernel over netlink).
command -v nft >/dev/null 2>&1 || netext_apt nftables

# systemd-resolved: the dns package's tests run the real daemon inside a
# network and mount namespace with a private D-Bus. Its files are only
# unpacked into NETEXT_RESOLVED_DIR, never installed (installing the package
# would take over the host's /etc/resolv.conf). The version matching the
# installed libsystemd-shared is preferred, as the binary links against it.
NETEXT_RESOLVED_DIR=${NETEXT_RESOLVED_DIR:-/var/cache/netext/systemd-resolved}
if [ "$(id -u)" = 0 ] && [ ! -x "$NETEXT_RESOLVED_DIR/lib/systemd/systemd-resolved" ] &&
	[ ! -x "$NETEXT_RESOLVED_DIR/usr/lib/systemd/systemd-resolved" ]; then
	command -v dbus-daemon >/dev/null 2>&1 || [ -x /usr/bin/dbus-daemon ] || netext_apt dbus-daemon
	(
		tmp=$(mktemp -d) || exit 1
		trap 'rm -rf "$tmp"' EXIT
		cd "$tmp" || exit 1
		chmod 755 "$tmp" # apt's sandbox user writes here
		v=$(dpkg-query -W -f='${Version}' libsystemd-shared 2>/dev/null)
		{ [ -n "$v" ] && apt-get download -qq "systemd-resolved=$v" 2>/dev/null; } ||
			apt-get download -qq systemd-resolved 2>/dev/null ||
			{ apt-get update -qq && apt-get download -qq systemd-resolved; } || exit 1
		mkdir -p "$NETEXT_RESOLVED_DIR.tmp" &&
			dpkg -x systemd-resolved_*.deb "$NETEXT_RESOLVED_DIR.tmp" &&
			mv "$NETEXT_RESOLVED_DIR.tmp" "$NETEXT_RESOLVED_DIR"
	) || { rm -rf "$NETEXT_RESOLVED_DIR.tmp"; echo "setup: could not fetch systemd-resolved; the dns package's resolved tests will be skipped" >&2; }
fi
