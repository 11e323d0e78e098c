package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
)

var watchCommand = &command{
	name:    "watch",
	args:    "[--json]",
	summary: "print the status of every session, then every change, until interrupted",
	run: func(e *env, args []string) error {
		fs := e.flags("watch")
		if _, err := e.parse(fs, "[--json]", args, 0, 0); err != nil {
			return err
		}
		w, err := e.client.Watch(e.ctx, client.WatchOptions{})
		if err != nil {
			return err
		}
		defer w.Close()
		for ev, err := range w.All() {
			if err != nil {
				if e.ctx.Err() != nil {
					return nil // interrupted
				}
				return err
			}
			if e.json {
				if err := e.printEvent(ev); err != nil {
					return err
				}
				continue
			}
			switch ev.Type {
			case apitype.EventSnapshot:
				fmt.Fprintf(e.stdout, "%-6d %s\n", ev.Seq, watchLine(*ev.Status, "(current)"))
			case apitype.EventChange:
				fmt.Fprintf(e.stdout, "%-6d %s\n", ev.Seq, watchLine(*ev.Status, ""))
			}
		}
		if e.ctx.Err() != nil {
			return nil
		}
		return errors.New("netextd ended the watch stream")
	},
}

// printEvent writes one event as one line of JSON.
func (e *env) printEvent(ev apitype.Event) error {
	b, err := jsonLine(ev)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(b)
	return err
}

// watchLine renders a status as "NAME STATUS DETAIL" in columns.
func watchLine(st apitype.SessionStatus, note string) string {
	s := fmt.Sprintf("%-16s %-13s", st.Name, st.Status)
	switch {
	case note != "":
		s += " " + note
	case st.LastError != nil:
		s += " error: " + st.LastError.Message
	case st.Interface != "":
		s += " interface " + st.Interface
	}
	return strings.TrimRight(s, " ")
}
