package cli

import (
	"time"

	"github.com/netext/netext/apitype"
)

const stopArgs = "NAME [--reason REASON] [--no-wait] [--timeout DURATION]"

var stopCommand = &command{
	name:    "stop",
	args:    stopArgs,
	summary: "stop a session and wait until it is disconnected",
	run: func(e *env, args []string) error {
		fs := e.flags("stop")
		reason := fs.String("reason", apitype.StopReasonUserInitiated, "stop reason handed to the provider")
		noWait := fs.Bool("no-wait", false, "return once the session is disconnecting")
		timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the session to disconnect")
		pos, err := e.parse(fs, stopArgs, args, 1, 1)
		if err != nil {
			return err
		}
		name := pos[0]
		if *noWait {
			st, err := e.client.Stop(e.ctx, name, *reason)
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
		st, err := e.client.Stop(e.ctx, name, *reason)
		if err != nil {
			return err
		}
		final := st
		if st.Status != apitype.StatusDisconnected || cur.Status != apitype.StatusDisconnected {
			err = e.wait(w, name, st.Status, *timeout, func(s apitype.SessionStatus) (bool, error) {
				final = s
				return s.Status == apitype.StatusDisconnected || s.Status == apitype.StatusInvalid, nil
			})
			if err != nil {
				return err
			}
		}
		return e.printStatus(final)
	},
}
