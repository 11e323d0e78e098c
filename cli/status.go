package cli

import (
	"fmt"
	"time"

	"github.com/netext/netext/apitype"
)

var statusCommand = &command{
	name:    "status",
	args:    "[NAME] [--json]",
	summary: "show the status of every session, or of one",
	run: func(e *env, args []string) error {
		fs := e.flags("status")
		pos, err := e.parse(fs, "[NAME] [--json]", args, 0, 1)
		if err != nil {
			return err
		}
		if len(pos) == 1 {
			st, err := e.client.Status(e.ctx, pos[0])
			if err != nil {
				return err
			}
			raw, stats := e.providerStats(st)
			if e.json {
				return e.printJSON(statusWithStats{SessionStatus: st, ProviderStats: raw})
			}
			if err := e.printStatusDetail(st); err != nil {
				return err
			}
			return e.printPeers(stats)
		}
		list, err := e.client.Statuses(e.ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(apitype.StatusList{Sessions: nonNil(list)})
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stdout, "No configurations. Add one with: netext config add NAME --provider ID")
			return nil
		}
		tw := e.table()
		fmt.Fprintln(tw, "NAME\tSTATUS\tFOR\tINTERFACE\tLAST ERROR")
		for _, st := range list {
			since, lastErr := "-", "-"
			if st.ConnectedAt != nil {
				since = e.ago(*st.ConnectedAt)
			}
			if st.LastError != nil {
				lastErr = st.LastError.Message
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", st.Name, st.Status, since, orDash(st.Interface), lastErr)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, st := range list {
			if st.Blocking {
				fmt.Fprintf(e.stdout, "%s: traffic blocked: %s\n", st.Name, blockingText(st))
			}
		}
		return nil
	},
}

func (e *env) printStatusDetail(st apitype.SessionStatus) error {
	tw := e.table()
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("name", st.Name)
	row("status", string(st.Status))
	if st.ConnectedAt != nil {
		row("connected", fmt.Sprintf("%s (%s ago)", st.ConnectedAt.Format(time.RFC3339), e.ago(*st.ConnectedAt)))
	}
	row("interface", orDash(st.Interface))
	row("provider", orDash(st.ProviderID))
	if st.Blocking {
		row("traffic blocked", blockingText(st))
	}
	if le := st.LastError; le != nil {
		code := ""
		if le.Code != "" {
			code = le.Code + ", "
		}
		row("last error", fmt.Sprintf("%s (%s%s)", le.Message, code, le.At.Format(time.RFC3339)))
	} else {
		row("last error", "-")
	}
	return tw.Flush()
}

// blockingText says why traffic is blocked while st's session is
// disconnected, and how to lift it.
func blockingText(st apitype.SessionStatus) string {
	why := st.BlockingReason
	if why == "" {
		why = "leak protection"
	}
	return fmt.Sprintf("%s holds until you run `netext stop %s`", why, st.Name)
}
