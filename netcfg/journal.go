package netcfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/netext/netext/internal/atomicfile"
)

const journalVersion = 1

// journal records what a Manager is about to create, so that CleanUp can
// remove it after a crash. It is written before every change set and holds
// the union of the state before and after the change.
type journal struct {
	Version      int    `json:"version"`
	NetNS        string `json:"netns"`
	Link         string `json:"link"`
	LinkIndex    int    `json:"link_index"`
	Table        int    `json:"table"`
	RulePriority int    `json:"rule_priority"`
	Protocol     uint8  `json:"protocol"`
	Mark         uint32 `json:"mark"`
	MarkMask     uint32 `json:"mark_mask"`
	// LinkTouched says OrigMTU and OrigUp hold the link's state from
	// before we changed it.
	LinkTouched bool           `json:"link_touched"`
	OrigMTU     int            `json:"orig_mtu,omitempty"`
	OrigUp      bool           `json:"orig_up,omitempty"`
	Addrs       []netip.Prefix `json:"addrs"`
	Rules       []string       `json:"rules"`  // "4:7300", family:priority
	Routes      []netip.Prefix `json:"routes"` // destinations in Table
}

func journalPath(dir string, table int) string {
	return filepath.Join(dir, "netcfg-"+strconv.Itoa(table)+".json")
}

// journalPaths returns the journals in dir, sorted.
func journalPaths(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "netcfg-*.json"))
	if err != nil {
		return nil, err
	}
	slices.Sort(m)
	return m, nil
}

// setState records the union of the given states.
func (j *journal) setState(states ...state) {
	addrs := make(map[netip.Prefix]bool)
	rules := make(map[ruleKey]bool)
	n := 0
	for _, s := range states {
		n += len(s.routes)
		for a := range s.addrs {
			addrs[a] = true
		}
		for k := range s.rules {
			rules[k] = true
		}
	}
	j.Addrs = j.Addrs[:0]
	for a := range addrs {
		j.Addrs = append(j.Addrs, a)
	}
	slices.SortFunc(j.Addrs, comparePrefix)
	j.Rules = j.Rules[:0]
	for k := range rules {
		j.Rules = append(j.Rules, strconv.Itoa(k.Family)+":"+strconv.Itoa(k.Priority))
	}
	slices.Sort(j.Rules)
	j.Routes = make([]netip.Prefix, 0, n)
	for i, s := range states {
		for p := range s.routes {
			if !slices.ContainsFunc(states[:i], func(o state) bool { _, ok := o.routes[p]; return ok }) {
				j.Routes = append(j.Routes, p)
			}
		}
	}
	slices.SortFunc(j.Routes, comparePrefix)
}

// ruleKeys parses Rules.
func (j *journal) ruleKeys() ([]ruleKey, error) {
	var out []ruleKey
	for _, s := range j.Rules {
		f, p, ok := strings.Cut(s, ":")
		fam, err1 := strconv.Atoi(f)
		prio, err2 := strconv.Atoi(p)
		if !ok || err1 != nil || err2 != nil || (fam != 4 && fam != 6) {
			return nil, fmt.Errorf("bad rule %q", s)
		}
		out = append(out, ruleKey{fam, prio})
	}
	return out, nil
}

func writeJournal(path string, j *journal) error {
	j.Version = journalVersion
	err := atomicfile.Write(path, atomicfile.Options{Pattern: ".netcfg-*.tmp", Mode: 0o600}, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(j)
	})
	if err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	return nil
}

func readJournal(path string) (*journal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parsing journal %s: %w", path, err)
	}
	if j.Version != journalVersion {
		return nil, fmt.Errorf("journal %s: unknown version %d", path, j.Version)
	}
	return &j, nil
}

func removeJournal(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing journal: %w", err)
	}
	return nil
}
