package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
)

// Exit codes of Run.
const (
	ExitOK          = 0 // success
	ExitFailure     = 1 // anything else that failed, such as a session that did not connect
	ExitUsage       = 2 // bad command line
	ExitUnreachable = 3 // netextd does not run, or its socket is elsewhere
	ExitNotFound    = 4 // no configuration, session or provider of that name
	ExitForbidden   = 5 // the caller may not do that (needs root or group netext)
	ExitConflict    = 6 // the name exists, the configuration changed meanwhile, it is disabled, or the session's state does not allow it
	ExitTimeout     = 7 // the daemon, the provider or the wait did not finish in time
)

// Options are Run's surroundings. The zero value uses the process's
// standard streams and the default client.
type Options struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Client talks to the daemon; nil means a zero client.Client (with
	// --socket applied).
	Client *client.Client
	// Terminal says whether Stderr is a terminal, which shows progress
	// indicators. nil means "detect on os.Stderr".
	Terminal *bool
	// Now is the clock, for durations such as "connected 5m ago"; nil
	// means time.Now.
	Now func() time.Time
}

// env is what a command runs with.
type env struct {
	ctx      context.Context
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	client   *client.Client
	terminal bool
	now      func() time.Time
	json     bool // --json
}

// command is one subcommand.
type command struct {
	name    string
	args    string // usage after the name, such as "NAME [--reason REASON]"
	summary string
	run     func(e *env, args []string) error
}

// commands lists the top-level commands, in the order help shows them.
// Each is defined in its own file.
var commands []*command

func init() {
	commands = []*command{
		configCommand, startCommand, stopCommand, statusCommand, watchCommand,
		messageCommand, providersCommand, completionCommand, demoCommand, helpCommand,
	}
}

// Run runs the netext command line args (without the program name) and
// returns the exit code.
func Run(ctx context.Context, args []string, opts Options) int {
	e := &env{ctx: ctx, stdin: opts.Stdin, stdout: opts.Stdout, stderr: opts.Stderr, client: opts.Client, now: opts.Now}
	if e.stdin == nil {
		e.stdin = os.Stdin
	}
	if e.stdout == nil {
		e.stdout = os.Stdout
	}
	if e.stderr == nil {
		e.stderr = os.Stderr
	}
	if e.now == nil {
		e.now = time.Now
	}
	if opts.Terminal != nil {
		e.terminal = *opts.Terminal
	} else {
		e.terminal = isTerminal(os.Stderr)
	}

	global := flag.NewFlagSet("netext", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	socket := global.String("socket", "", "path of netextd's socket")
	if err := global.Parse(args); err != nil {
		return e.fail(usageError{err: err, usage: mainUsage()})
	}
	args = global.Args()
	if e.client == nil {
		e.client = &client.Client{Socket: *socket}
	} else if *socket != "" {
		e.client = &client.Client{Socket: *socket, Dial: e.client.Dial}
	}
	if len(args) == 0 {
		fmt.Fprint(e.stderr, mainUsage())
		return ExitUsage
	}
	cmd := lookup(commands, args[0])
	if cmd == nil && args[0] == demoServerCommand.name {
		cmd = demoServerCommand
	}
	if cmd == nil {
		return e.fail(usageError{err: fmt.Errorf("unknown command %q", args[0]), usage: mainUsage()})
	}
	return e.fail(cmd.run(e, args[1:]))
}

func lookup(cmds []*command, name string) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a bad command line; usage is printed after it.
type usageError struct {
	err   error
	usage string
}

func (u usageError) Error() string { return u.err.Error() }

// errHelp ends a command after it printed its help.
var errHelp = errors.New("help shown")

// fail reports err and returns the exit code for it.
func (e *env) fail(err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return ExitOK
	}
	code, apiCode := exitCode(err)
	if e.json {
		e.printJSON(map[string]any{"error": apitype.Error{Code: apiCode, Message: err.Error()}})
		return code
	}
	fmt.Fprintf(e.stderr, "netext: %v\n", err)
	var u usageError
	if errors.As(err, &u) && u.usage != "" {
		fmt.Fprintf(e.stderr, "\n%s", u.usage)
	}
	return code
}

// exitCode returns the exit code and the error code for err.
func exitCode(err error) (int, apitype.ErrorCode) {
	var u usageError
	if errors.As(err, &u) {
		return ExitUsage, "usage"
	}
	if client.IsUnreachable(err) {
		return ExitUnreachable, "unreachable"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ExitTimeout, apitype.CodeTimeout
	}
	var f *sessionFailure
	if errors.As(err, &f) {
		return ExitFailure, apitype.ErrorCode(f.code())
	}
	code := client.Code(err)
	switch code {
	case apitype.CodeNotFound:
		return ExitNotFound, code
	case apitype.CodeForbidden:
		return ExitForbidden, code
	case apitype.CodeExists, apitype.CodeStale, apitype.CodeConflict, apitype.CodeDisabled:
		return ExitConflict, code
	case apitype.CodeTimeout:
		return ExitTimeout, code
	case "":
		return ExitFailure, "failure"
	}
	return ExitFailure, code
}

// flags returns a flag set for cmd with --json.
func (e *env) flags(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet("netext "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&e.json, "json", false, "print JSON instead of text")
	return fs
}

// parse parses args with flags anywhere among the positional arguments
// ("--" ends the flags), and checks the number of positional arguments:
// at least min, at most max (-1: any).
func (e *env) parse(fs *flag.FlagSet, usage string, args []string, min, max int) ([]string, error) {
	var flagArgs, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(e.stdout, commandUsage(fs, usage))
			return nil, errHelp
		case len(a) > 1 && a[0] == '-':
			flagArgs = append(flagArgs, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil && !isBool(f) && i+1 < len(args) {
				i++
				flagArgs = append(flagArgs, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	if err := fs.Parse(flagArgs); err != nil {
		return nil, usageError{err: err, usage: commandUsage(fs, usage)}
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		what := "too many arguments"
		if len(pos) < min {
			what = "missing arguments"
		}
		return nil, usageError{err: errors.New(what), usage: commandUsage(fs, usage)}
	}
	return pos, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// commandUsage renders "usage: netext CMD ARGS" and the flags.
func commandUsage(fs *flag.FlagSet, usage string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s %s\n", fs.Name(), usage)
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	any := false
	fs.VisitAll(func(f *flag.Flag) {
		if !any {
			fmt.Fprintln(&b, "\nflags:")
			any = true
		}
		arg := ""
		n, text := flag.UnquoteUsage(f)
		if !isBool(f) {
			arg = " " + strings.ToUpper(n)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, text)
	})
	tw.Flush()
	return b.String()
}

// printJSON writes v as indented JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a writer that aligns tab-separated columns; Flush it.
func (e *env) table() *tabwriter.Writer {
	return tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ago renders how long ago t was, in whole seconds.
func (e *env) ago(t time.Time) string {
	d := e.now().Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString("usage: netext [--socket PATH] COMMAND [ARGS]\n\ncommands:\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	b.WriteString("\nEvery command takes --json. Run \"netext help COMMAND\" for its flags.\n")
	b.WriteString("The socket is " + apitype.DefaultSocketPath + " unless --socket or $" + apitype.SocketEnv + " says otherwise.\n")
	b.WriteString(`
exit codes:
  0  success
  1  failure (such as a session that did not connect)
  2  bad command line
  3  netextd cannot be reached
  4  no such configuration, session or provider
  5  permission denied (needs root or group netext)
  6  conflict: the name exists, the configuration changed meanwhile, it is
     disabled, or the session's state does not allow the request
  7  timeout
`)
	return b.String()
}
