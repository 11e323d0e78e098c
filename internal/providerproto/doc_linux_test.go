package providerproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/netext/netext/netsettings"
	"golang.org/x/sys/unix"
)

const protocolDoc = "../../docs/provider-protocol.md"

// docSection returns the text of the section of docs/provider-protocol.md
// that starts with the given heading, up to the next heading of its level.
func docSection(t *testing.T, heading string) string {
	t.Helper()
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no heading %q", protocolDoc, heading)
	}
	level := heading[:strings.Index(heading, " ")+1]
	if i := strings.Index(rest, "\n"+level); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// strictBody decodes a documented body into v, rejecting fields that v does
// not have, so that the document and the types agree.
func strictBody(body json.RawMessage, v any) error {
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// bodyTypes maps each request type to its body and its reply's body.
var bodyTypes = map[string]func() (req, reply any){
	TypeHello:         func() (any, any) { return &Hello{}, &Welcome{} },
	TypeStart:         func() (any, any) { return &Start{}, &struct{}{} },
	TypeStop:          func() (any, any) { return &Stop{}, &struct{}{} },
	TypeAppMessage:    func() (any, any) { return &AppMessage{}, &AppMessage{} },
	TypeSleep:         func() (any, any) { return &struct{}{}, &struct{}{} },
	TypeWake:          func() (any, any) { return &struct{}{}, nil },
	TypePath:          func() (any, any) { return &Path{}, nil },
	TypeConfiguration: func() (any, any) { return &Configuration{}, nil },
	TypeSetSettings:   func() (any, any) { return &SetSettings{}, &SetSettingsReply{} },
	TypeProtect:       func() (any, any) { return &struct{}{}, &struct{}{} },
	TypeReasserting:   func() (any, any) { return &Reasserting{}, nil },
	TypeCancel:        func() (any, any) { return &Cancel{}, nil },
}

func TestDocTranscript(t *testing.T) {
	text := docSection(t, "## Transcript")
	type key struct {
		sender string
		id     uint64
	}
	requests := map[key]string{} // outstanding requests by sender and id
	var sender string
	n := 0
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.Contains(line, "P → D"):
			sender = "provider"
		case strings.Contains(line, "D → P"):
			sender = "daemon"
		}
		if !strings.HasPrefix(line, "{") {
			continue
		}
		n++
		m, err := Decode([]byte(line))
		if err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		if n == 1 && (m.Type != TypeHello || sender != "provider") {
			t.Errorf("the transcript starts with %s from the %s", m.Type, sender)
		}
		switch m.Kind() {
		case KindRequest:
			if _, ok := requests[key{sender, m.ID}]; ok {
				t.Errorf("%s: id %d of the %s is in use", line, m.ID, sender)
			}
			requests[key{sender, m.ID}] = m.Type
		case KindReply:
			other := map[string]string{"provider": "daemon", "daemon": "provider"}[sender]
			typ, ok := requests[key{other, m.ID}]
			if !ok {
				t.Errorf("%s: answers no request of the %s", line, other)
				continue
			}
			delete(requests, key{other, m.ID})
			if _, reply := bodyTypes[typ](); reply != nil {
				if err := strictBody(m.Body, reply); err != nil {
					t.Errorf("%s: reply to %s: %v", line, typ, err)
				}
			}
			continue
		}
		newBodies, ok := bodyTypes[m.Type]
		if !ok {
			t.Errorf("%s: unknown type", line)
			continue
		}
		if rule, ok := accepts[map[string]Role{"provider": RoleDaemon, "daemon": RoleProvider}[sender]][m.Type]; m.Type != TypeHello && (!ok || rule.request != (m.ID != 0)) {
			t.Errorf("%s: the %s may not send it this way", line, sender)
		}
		body, _ := newBodies()
		if err := strictBody(m.Body, body); err != nil {
			t.Errorf("%s: %v", line, err)
		}
		if s, ok := body.(*SetSettings); ok && !s.Clear() {
			settings, err := netsettings.Decode(s.Settings)
			if err == nil {
				err = settings.Validate()
			}
			if err != nil {
				t.Errorf("%s: settings: %v", line, err)
			}
		}
		if s, ok := body.(*Stop); ok && !s.Reason.Known() {
			t.Errorf("%s: unknown reason", line)
		}
	}
	if n < 15 {
		t.Errorf("found only %d messages in the transcript", n)
	}
	if len(requests) > 0 {
		t.Errorf("requests without replies: %v", requests)
	}
}

func TestDocStopReasons(t *testing.T) {
	text := docSection(t, "### `stop` (request, → provider)")
	for _, r := range StopReasons {
		if !strings.Contains(text, "| `"+string(r)+"` |") {
			t.Errorf("stop reason %q is not documented", r)
		}
	}
	codes := docSection(t, "## Errors")
	for _, c := range []Code{CodeInvalid, CodeCanceled, CodeFailed, CodeUnsupported, CodeTimeout, CodeProtocol, CodeInternal} {
		if !strings.Contains(codes, "| `"+string(c)+"` |") {
			t.Errorf("error code %q is not documented", c)
		}
	}
}

// TestDocPython runs the Python sketch of the documentation as a provider
// against a Go daemon end, with messages large enough to be cut into
// datagrams both ways and descriptors both ways.
func TestDocPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	sketch := docSection(t, "## Framing in Python")
	_, sketch, _ = strings.Cut(sketch, "```python\n")
	sketch, _, _ = strings.Cut(sketch, "```")
	script := sketch + `
msg, fds = recv()
assert msg["type"] == "start" and not fds, msg["type"]
name = msg["body"]["configuration"]["name"]

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
send({"id": 2, "type": "protect"}, [s.fileno()])
r, _ = recv()
assert r == {"id": 2, "type": "reply"}, r

send({"id": 3, "type": "setSettings", "body": {"settings": {"pad": "+" * 200000}}})
r, fds = recv()
assert r["body"]["tunnel"]["name"] == "netext0" and len(fds) == 1, (r, fds)
os.write(fds[0], b"written by python")
os.close(fds[0])

send({"id": msg["id"], "type": "reply", "body": {"nameLength": len(name)}})
m, _ = recv()
assert m["type"] == "stop" and m["body"]["reason"] == "userInitiated", m
send({"id": m["id"], "type": "reply"})
m, _ = recv()
assert m is None, m
`
	pr, pw := newPipe(t)
	protected := make(chan error, 1)
	handler := func(in *Incoming) {
		switch in.Type {
		case TypeProtect:
			typ, err := unix.GetsockoptInt(int(in.Files[0].Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
			in.CloseFiles()
			if err == nil && typ != unix.SOCK_DGRAM {
				err = fmt.Errorf("socket type %d", typ)
			}
			protected <- err
			in.Reply(nil)
		case TypeSetSettings:
			var s SetSettings
			if err := in.Decode(&s); err != nil || len(s.Settings) < 200000 {
				in.ReplyError(NewError(CodeInvalid, fmt.Sprintf("%d bytes, %v", len(s.Settings), err)))
				return
			}
			in.Reply(&SetSettingsReply{Tunnel: &Tunnel{Name: "netext0", Kind: KindTUN, MTU: 1420}}, pw)
			pw.Close()
		}
	}
	df, pf, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(df, Config{Role: RoleDaemon, Handler: handler, Logger: testLogger(t), Software: "netextd/test"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(t, d)
	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, python, "-c", script)
	cmd.ExtraFiles = []*os.File{pf}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pf.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if err := <-exited; err != nil {
			t.Errorf("python: %v\n%s", err, out.String())
		}
	}()
	defer d.Close()

	h, err := d.WaitHello(ctx)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	if h.SDK != "example-py/0.1" {
		t.Errorf("hello: %+v", h)
	}
	name := strings.Repeat("+", 150000)
	r, err := d.Request(ctx, TypeStart, &Start{Configuration: Configuration{Name: name}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var got struct{ NameLength int }
	if err := r.Decode(&got); err != nil || got.NameLength != len(name) {
		t.Errorf("start reply %s, %v", r.Body, err)
	}
	if err := <-protected; err != nil {
		t.Errorf("protect: %v", err)
	}
	if _, err := d.Request(ctx, TypeStop, &Stop{Reason: StopUserInitiated}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	pw.Close()
	if b, err := io.ReadAll(pr); err != nil || string(b) != "written by python" {
		t.Errorf("tunnel descriptor: read %q, %v", b, err)
	}
}
