// Package dnstesting holds what the DNS tests of several packages share:
// the real systemd-resolved, unpacked from Debian's package by
// scripts/setup.sh under /var/cache/netext/systemd-resolved (or
// $NETEXT_RESOLVED_DIR) without installing it, running on a private
// system bus inside a test network namespace; and DNS servers that serve
// until the test ends.
//
// Every process and server a helper starts is stopped in t.Cleanup, also
// when the test fails, and every wait has a deadline.
//
// The package is imported only from tests.
package dnstesting
