package cli

import (
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/netext/netext/apitype"
)

var messageCommand = &command{
	name:    "message",
	args:    "NAME DATA|-",
	summary: "send DATA (or stdin, with -) to the provider of a running session and print its reply",
	run: func(e *env, args []string) error {
		fs := e.flags("message")
		pos, err := e.parse(fs, "NAME DATA|-", args, 2, 2)
		if err != nil {
			return err
		}
		data := []byte(pos[1])
		if pos[1] == "-" {
			if data, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20)); err != nil {
				return err
			}
		}
		reply, err := e.client.SendMessage(e.ctx, pos[0], data)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(apitype.MessageResponse{Data: nonNil(reply)})
		}
		// Text gets a final newline; other bytes are written as they are.
		if len(reply) > 0 && utf8.Valid(reply) && reply[len(reply)-1] != '\n' {
			reply = append(reply, '\n')
		}
		_, err = e.stdout.Write(reply)
		return err
	},
}

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}
