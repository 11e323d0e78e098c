package netcfg

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// CleanUp removes what a previous run that did not shut down cleanly left
// behind: for each journal in opts.StateDir written in the same network
// namespace, the addresses it added (if the link still exists), the link's
// original MTU and up state, its rules and the routes of its table; then,
// even without a journal, every rule at our priorities and every route in
// our table that carries our protocol number. Removing something that is
// already gone is not an error. Journals of other network namespaces are
// left alone.
//
// Run CleanUp at daemon start before calling New. It must not run while a
// Manager with the same numbers is in use.
func CleanUp(opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	b, err := newOSBackend(o.NetNS)
	if err != nil {
		return fmt.Errorf("netcfg: opening netlink: %w", err)
	}
	defer b.Close()
	return cleanUp(o, b)
}

func cleanUp(o Options, b backend) error {
	nsID, err := b.NamespaceID()
	if err != nil {
		return fmt.Errorf("netcfg: identifying network namespace: %w", err)
	}
	var errs []error
	if o.StateDir != "" {
		paths, err := journalPaths(o.StateDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing journals: %w", err))
		}
		for _, p := range paths {
			j, err := readJournal(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if j.NetNS != nsID {
				o.Logger.Info("netcfg: cleanup: skipping journal of another network namespace", "journal", p, "netns", j.NetNS)
				continue
			}
			if err := cleanJournal(b, j, o.Logger); err != nil {
				errs = append(errs, fmt.Errorf("journal %s: %w", p, err))
				continue
			}
			if err := removeJournal(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := sweep(b, o.Table, o.RulePriority, o.Protocol, o.Logger); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("netcfg: cleanup: %w", errors.Join(errs...))
	}
	return nil
}

// cleanJournal undoes what j records.
func cleanJournal(b backend, j *journal, logger *slog.Logger) error {
	var errs []error
	if err := sweep(b, j.Table, j.RulePriority, j.Protocol, logger); err != nil {
		errs = append(errs, err)
	}
	keys, err := j.ruleKeys()
	if err != nil {
		errs = append(errs, err)
	}
	if len(keys) > 0 {
		// Rules outside the swept range, should the journal name any.
		rules, err := b.RuleList(0)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing rules: %w", err))
		}
		for _, r := range rules {
			if r.Protocol != j.Protocol || !slices.Contains(keys, r.key()) {
				continue
			}
			if err := b.RuleDel(r); err != nil {
				errs = append(errs, fmt.Errorf("deleting %s: %w", r, err))
			}
		}
	}
	link, err := b.LinkByIndex(j.LinkIndex)
	switch {
	case errors.Is(err, errLinkNotFound) || (err == nil && link.Name != j.Link):
		logger.Info("netcfg: cleanup: link is gone", "link", j.Link, "index", j.LinkIndex)
	case err != nil:
		errs = append(errs, fmt.Errorf("reading link %s: %w", j.Link, err))
	default:
		for _, a := range j.Addrs {
			if err := b.AddrDel(link.Index, a); err != nil {
				errs = append(errs, fmt.Errorf("deleting address %s from %s: %w", a, j.Link, err))
			}
		}
		if j.LinkTouched {
			if link.MTU != j.OrigMTU && j.OrigMTU > 0 {
				if err := b.LinkSetMTU(link.Index, j.OrigMTU); err != nil {
					errs = append(errs, fmt.Errorf("restoring MTU of %s: %w", j.Link, err))
				}
			}
			if link.Up != j.OrigUp {
				if err := b.LinkSetUp(link.Index, j.OrigUp); err != nil {
					errs = append(errs, fmt.Errorf("restoring up state of %s: %w", j.Link, err))
				}
			}
		}
		logger.Info("netcfg: cleanup: restored link", "link", j.Link, "addrs", len(j.Addrs), "link_touched", j.LinkTouched)
	}
	return errors.Join(errs...)
}

// sweep deletes the rules at the priority range from prio that carry proto
// (and any rule with proto that looks up table), and the routes of table
// that carry proto.
func sweep(b backend, table, prio int, proto uint8, logger *slog.Logger) error {
	var errs []error
	rules, err := b.RuleList(0)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing rules: %w", err))
	}
	nRules := 0
	for _, r := range rules {
		inRange := r.Priority >= prio && r.Priority < prio+RulePriorityRange
		toTable := r.Action == frActToTable && r.Table == table
		if r.Protocol != proto || !(inRange || toTable) {
			continue
		}
		if err := b.RuleDel(r); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", r, err))
			continue
		}
		nRules++
	}
	routes, err := b.RouteList(0, table)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing table %d: %w", table, err))
	}
	var ours []kRoute
	for _, r := range routes {
		if r.Protocol == proto {
			ours = append(ours, r)
		}
	}
	if len(ours) > 0 {
		perRoute, err := b.RouteDel(ours)
		if err == nil {
			err = errors.Join(perRoute...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting routes of table %d: %w", table, err))
		}
	}
	if nRules+len(ours) > 0 {
		logger.Info("netcfg: cleanup: swept", "table", table, "priority", prio, "rules", nRules, "routes", len(ours))
	}
	return errors.Join(errs...)
}
