// Command benchreport turns the raw results of a tunnel benchmark run (see
// bench/lib.sh) into Markdown tables: iperf3 throughput medians with their
// range and ratio to the anchor path, the tunnel processes' CPU, ping
// latency percentiles and peak memory.
//
// Usage:
//
//	benchreport [-anchor ID] DIR
//
// DIR holds:
//
//	cases                      one path per line: ID, a tab, its label (table order)
//	machine                    free text printed first
//	iperf/ID.PN.DIR.rR.json    iperf3 -J output: N streams, direction fwd or rev, round R
//	cpu/ID.PN.DIR.rR           "TICKS CLK_TCK SECONDS": CPU ticks of the path's tunnel
//	                           processes during that run, and its wall time
//	ping/ID.PHASE.json         pinglat output; PHASE is idle (before the bulk runs) or post
//	rss/ID                     lines "PROCESS KB": peak RSS (VmHWM) at the end
//
// Throughput is iperf3's receiver-side rate (end.sum_received).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	fs := flag.NewFlagSet("benchreport", flag.ExitOnError)
	anchor := fs.String("anchor", "wg", "`ID` of the path the ratios refer to")
	fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: benchreport [-anchor ID] DIR")
		os.Exit(2)
	}
	if err := report(os.Stdout, fs.Arg(0), *anchor); err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: %v\n", err)
		os.Exit(1)
	}
}

type pathCase struct{ id, label string }

// run is one iperf3 measurement.
type run struct {
	mbits   float64
	retrans float64
	cpu     float64 // tunnel processes' CPU, % of one core; negative when unknown
}

type key struct {
	id      string
	streams int
	dir     string
}

func report(w io.Writer, dir, anchor string) error {
	cases, err := readCases(filepath.Join(dir, "cases"))
	if err != nil {
		return err
	}
	if machine, err := os.ReadFile(filepath.Join(dir, "machine")); err == nil {
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(string(machine)))
	}
	runs, err := readRuns(dir)
	if err != nil {
		return err
	}

	fmt.Fprintln(w, "\n### Throughput (iperf3 TCP, Mbit/s, median [min–max] of the rounds)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | streams | direction | Mbit/s | ratio to anchor | tunnel CPU, % of a core | retransmits |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	var keys []key
	for k := range runs {
		keys = append(keys, k)
	}
	order := map[string]int{}
	for i, c := range cases {
		order[c.id] = i
	}
	slices.SortFunc(keys, func(a, b key) int {
		if d := order[a.id] - order[b.id]; d != 0 {
			return d
		}
		if d := a.streams - b.streams; d != 0 {
			return d
		}
		return strings.Compare(a.dir, b.dir)
	})
	for _, k := range keys {
		rs := runs[k]
		mb := column(rs, func(r run) float64 { return r.mbits })
		ratio := "–"
		if a, ok := runs[key{anchor, k.streams, k.dir}]; ok {
			ratio = fmt.Sprintf("%.2f", median(mb)/median(column(a, func(r run) float64 { return r.mbits })))
		}
		cpu := column(rs, func(r run) float64 { return r.cpu })
		cpuText := "–"
		if slices.Min(cpu) >= 0 {
			cpuText = fmt.Sprintf("%.0f", median(cpu))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.0f [%.0f–%.0f] | %s | %s | %.0f |\n", label(cases, k.id), k.streams, k.dir,
			median(mb), slices.Min(mb), slices.Max(mb), ratio, cpuText, median(column(rs, func(r run) float64 { return r.retrans })))
	}

	fmt.Fprintln(w, "\n### Latency (ping RTT, ms: p50 / p99 / max; idle = before the bulk runs, post = after)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | idle | post | lost |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, c := range cases {
		var cells []string
		lost := 0
		for _, phase := range []string{"idle", "post"} {
			var p struct {
				Sent, Received int
				P50, P99, Max  float64
			}
			data, err := os.ReadFile(filepath.Join(dir, "ping", c.id+"."+phase+".json"))
			if err != nil || json.Unmarshal(data, &p) != nil {
				cells = append(cells, "–")
				continue
			}
			lost += p.Sent - p.Received
			cells = append(cells, fmt.Sprintf("%.3f / %.3f / %.3f", p.P50, p.P99, p.Max))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d |\n", c.label, cells[0], cells[1], lost)
	}

	fmt.Fprintln(w, "\n### Peak memory (VmHWM at the end)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | process | VmHWM |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	for _, c := range cases {
		f, err := os.Open(filepath.Join(dir, "rss", c.id))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			i := strings.LastIndexByte(line, ' ')
			if i < 0 {
				continue
			}
			name := line[:i]
			n, err := strconv.ParseFloat(line[i+1:], 64)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %.1f MB |\n", c.label, name, n/1000)
		}
		f.Close()
	}
	return nil
}

func readCases(path string) ([]pathCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cs []pathCase
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		id, lab, ok := strings.Cut(l, "\t")
		if !ok {
			return nil, fmt.Errorf("%s: %q: want ID, a tab, and a label", path, l)
		}
		cs = append(cs, pathCase{id, lab})
	}
	return cs, nil
}

func label(cs []pathCase, id string) string {
	for _, c := range cs {
		if c.id == id {
			return c.label
		}
	}
	return id
}

// readRuns reads every iperf/ID.PN.DIR.rR.json with its cpu file.
func readRuns(dir string) (map[key][]run, error) {
	files, err := filepath.Glob(filepath.Join(dir, "iperf", "*.json"))
	if err != nil {
		return nil, err
	}
	runs := map[key][]run{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		parts := strings.Split(name, ".")
		if len(parts) != 4 || !strings.HasPrefix(parts[1], "P") {
			return nil, fmt.Errorf("%s: want ID.PN.DIR.rR.json", f)
		}
		streams, err := strconv.Atoi(parts[1][1:])
		if err != nil {
			return nil, fmt.Errorf("%s: streams: %w", f, err)
		}
		var res struct {
			End struct {
				SumSent struct {
					Retransmits float64 `json:"retransmits"`
				} `json:"sum_sent"`
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
			Error string `json:"error"`
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if res.Error != "" {
			return nil, fmt.Errorf("%s: iperf3: %s", f, res.Error)
		}
		r := run{mbits: res.End.SumReceived.BitsPerSecond / 1e6, retrans: res.End.SumSent.Retransmits, cpu: -1}
		if c, err := os.ReadFile(filepath.Join(dir, "cpu", name)); err == nil {
			var ticks, hz, secs float64
			if _, err := fmt.Sscan(string(c), &ticks, &hz, &secs); err == nil && hz > 0 && secs > 0 {
				r.cpu = 100 * ticks / hz / secs
			}
		}
		k := key{parts[0], streams, parts[2]}
		runs[k] = append(runs[k], r)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no iperf3 results", dir)
	}
	return runs, nil
}

func column(rs []run, f func(run) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
