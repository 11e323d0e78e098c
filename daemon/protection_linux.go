package daemon

import (
	"time"

	"github.com/vishvananda/netlink"
)

// watchSettle is how long the watch waits after an address change for
// more of them, since joining a network comes as several.
const watchSettle = 100 * time.Millisecond

// watch reads the host's local networks again, and updates the table,
// whenever an address is added or removed, until stop is called: the
// local networks that excludeLocalNetworks lets through follow the
// networks the host joins and leaves.
func (p *protection) watch() (stop func()) {
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) { p.log.Warn("leak protection: watching the host's addresses", "err", err) },
	})
	if err != nil {
		p.log.Error("leak protection: cannot watch the host's addresses; local networks are read at session changes only", "err", err)
		return func() {}
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-done:
				return
			}
			t := time.NewTimer(watchSettle)
		settle:
			for {
				select {
				case _, ok := <-ch:
					if !ok {
						t.Stop()
						return
					}
				case <-t.C:
					break settle
				case <-done:
					t.Stop()
					return
				}
			}
			p.refresh()
		}
	}()
	return func() {
		close(done)
		<-ended
		go func() {
			for range ch { // until the subscription has ended
			}
		}()
	}
}
