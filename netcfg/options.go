package netcfg

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/vishvananda/netns"
)

// Defaults for [Options]; see the package documentation for why these
// numbers.
const (
	DefaultTable        = 7373
	DefaultRulePriority = 7300
	DefaultMark         = 0x10000000
	DefaultProtocol     = 78
)

// RulePriorityRange is the number of rule priorities reserved from
// Options.RulePriority on. [New] refuses foreign rules in that range.
const RulePriorityRange = 10

// Options select the numbers netcfg owns and where it works. The zero value
// of each field selects its default.
type Options struct {
	// Table is our routing table (default DefaultTable). It must not be
	// 253 (default), 254 (main) or 255 (local).
	Table int
	// RulePriority is the first of the RulePriorityRange rule priorities
	// we own (default DefaultRulePriority). The range must lie in
	// 1-32765, before the kernel's "lookup main" rule.
	RulePriority int
	// Mark and MarkMask select packets that bypass the tunnel (default
	// DefaultMark). A zero MarkMask with a non-zero Mark means Mark's own
	// bits; Mark must be non-zero and within MarkMask.
	Mark, MarkMask uint32
	// Protocol is the netlink protocol number (RTPROT) on our routes and
	// rules (default DefaultProtocol). It must not be one the kernel or
	// routing daemons use (0-4, 8-18, 42, 99, 186-192).
	Protocol uint8
	// StateDir is where the journal lives; it must exist. Empty disables
	// the journal, and CleanUp can then only sweep rules and routes, not
	// addresses or the link's MTU.
	StateDir string
	// Logger receives one line per applied change set; nil discards.
	Logger *slog.Logger
	// NetNS is the network namespace to configure. The zero value means
	// the namespace of the thread calling New or CleanUp. New and CleanUp
	// duplicate the handle; the caller keeps ownership of it.
	NetNS netns.NsHandle
}

// withDefaults returns o with defaults filled in, or an error naming the
// invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.Table == 0 {
		o.Table = DefaultTable
	}
	if o.RulePriority == 0 {
		o.RulePriority = DefaultRulePriority
	}
	o.Mark, o.MarkMask = MarkDefaults(o.Mark, o.MarkMask)
	if o.Protocol == 0 {
		o.Protocol = DefaultProtocol
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Table < 0 || o.Table > 0x7fffffff:
		return o, fmt.Errorf("netcfg: Options.Table %d out of range", o.Table)
	case o.Table >= 253 && o.Table <= 255:
		return o, fmt.Errorf("netcfg: Options.Table %d is a kernel table (default, main or local)", o.Table)
	case o.RulePriority < 1 || o.RulePriority+RulePriorityRange-1 > 32765:
		return o, fmt.Errorf("netcfg: Options.RulePriority %d: range %d-%d must lie in 1-32765",
			o.RulePriority, o.RulePriority, o.RulePriority+RulePriorityRange-1)
	case o.Mark == 0:
		return o, fmt.Errorf("netcfg: Options.Mark must not be zero when Options.MarkMask is %#x", o.MarkMask)
	case o.Mark&^o.MarkMask != 0:
		return o, fmt.Errorf("netcfg: Options.Mark %#x has bits outside Options.MarkMask %#x", o.Mark, o.MarkMask)
	case reservedProtocol(o.Protocol):
		return o, fmt.Errorf("netcfg: Options.Protocol %d is reserved", o.Protocol)
	}
	if o.StateDir != "" {
		if fi, err := os.Stat(o.StateDir); err != nil || !fi.IsDir() {
			return o, fmt.Errorf("netcfg: Options.StateDir %q is not a directory", o.StateDir)
		}
	}
	return o, nil
}

func reservedProtocol(p uint8) bool {
	switch {
	case p <= 4, p >= 8 && p <= 18, p == 42, p == 99, p >= 186 && p <= 192:
		return true
	}
	return false
}

func (o *Options) priorities() string {
	return fmt.Sprintf("%d-%d", o.RulePriority, o.RulePriority+RulePriorityRange-1)
}

func (o *Options) ownsPriority(p int) bool {
	return p >= o.RulePriority && p < o.RulePriority+RulePriorityRange
}

// MarkDefaults fills in a mark and its mask as Options does, for every
// package that must select the same packets: both zero is DefaultMark,
// and a zero mask with a mark is the mark's own bits.
func MarkDefaults(mark, mask uint32) (uint32, uint32) {
	if mark == 0 && mask == 0 {
		return DefaultMark, DefaultMark
	}
	if mask == 0 {
		mask = mark
	}
	return mark, mask
}
