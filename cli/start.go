package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/netext/netext/apitype"
)

const startArgs = "NAME [--option KEY=VALUE]... [--no-wait] [--timeout DURATION]"

var startCommand = &command{
	name:    "start",
	args:    startArgs,
	summary: "start a session and wait until it is connected",
	run:     runStart,
}

// options collects repeated --option KEY=VALUE flags.
type options map[string]any

func (o options) String() string { return "" }

// Set parses VALUE as JSON when it is valid JSON (a number, true, false,
// null, a quoted string, an object or an array), and takes it as a string
// otherwise.
func (o options) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	var val any
	if err := json.Unmarshal([]byte(v), &val); err != nil {
		val = v
	}
	o[k] = val
	return nil
}

func runStart(e *env, args []string) error {
	fs := e.flags("start")
	opts := options{}
	fs.Var(opts, "option", "start option `KEY=VALUE` for the provider, repeatable; VALUE is JSON when it parses as JSON, else a string")
	noWait := fs.Bool("no-wait", false, "return once the session is connecting")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the session to connect")
	pos, err := e.parse(fs, startArgs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	if len(opts) == 0 {
		opts = nil
	}
	if *noWait {
		st, err := e.client.Start(e.ctx, name, opts)
		if err != nil {
			return err
		}
		return e.printStatus(st)
	}

	w, cur, err := e.follow(name)
	if err != nil {
		return err
	}
	defer w.Close()
	st, err := e.client.Start(e.ctx, name, opts)
	if err != nil {
		return err
	}
	final := st
	if st.Status != apitype.StatusConnected || cur.Status != apitype.StatusConnected {
		// Wait for connected; a disconnect after connecting began is a
		// failure.
		armed := cur.Status == apitype.StatusConnecting || cur.Status == apitype.StatusReasserting
		err = e.wait(w, name, st.Status, *timeout, func(s apitype.SessionStatus) (bool, error) {
			final = s
			switch s.Status {
			case apitype.StatusConnecting, apitype.StatusReasserting:
				armed = true
			case apitype.StatusConnected:
				return true, nil
			case apitype.StatusDisconnected:
				if armed {
					return true, &sessionFailure{s}
				}
			case apitype.StatusInvalid:
				return true, &sessionFailure{s}
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return e.printStatus(final)
}

// printStatus prints a session's status in one line, or as JSON.
func (e *env) printStatus(st apitype.SessionStatus) error {
	if e.json {
		return e.printJSON(st)
	}
	fmt.Fprintln(e.stdout, describe(st))
	return nil
}
