package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/netext/netext/internal/providerid"
)

// maxManifestSize bounds the size of a manifest file.
const maxManifestSize = 64 << 10

// manifest is the JSON form of a manifest file.
type manifest struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Executable  string `json:"executable"`
	User        string `json:"user"`
	Kind        Kind   `json:"kind"`
}

// fieldProblem is a problem of one manifest field; field "" is the whole
// manifest.
type fieldProblem struct {
	field, msg string
}

// decodeManifest parses a manifest strictly and checks the syntax of its
// fields. It checks nothing on the system: see loader.check for that.
// It returns the manifest (with whatever could be decoded) and its problems.
func decodeManifest(data []byte) (manifest, []fieldProblem) {
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return manifest{}, []fieldProblem{{"", jsonMessage(data, err)}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return manifest{}, []fieldProblem{{"", "more data after the JSON object"}}
	}
	var ps []fieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, fieldProblem{field, fmt.Sprintf(format, args...)})
	}
	if m.ID == "" {
		add("id", "required: a reverse-DNS name such as org.example.wireguard")
	} else if msg := providerid.Problem(m.ID); msg != "" {
		add("id", "%q: %s", m.ID, msg)
	}
	if len(m.Description) > 1024 || strings.ContainsFunc(m.Description, isControl) {
		add("description", "at most 1024 bytes without control characters")
	}
	switch {
	case m.Executable == "":
		add("executable", "required: the absolute path of the provider's program")
	case !strings.HasPrefix(m.Executable, "/"):
		add("executable", "%q: must be an absolute path", m.Executable)
	case path.Clean(m.Executable) != m.Executable:
		add("executable", "%q: must be a clean path (%s)", m.Executable, path.Clean(m.Executable))
	case strings.ContainsFunc(m.Executable, isControl):
		add("executable", "%q: contains control characters", m.Executable)
	}
	if m.User == "" {
		add("user", "required: the unprivileged user (name or uid) the provider runs as")
	} else if msg := userMessage(m.User); msg != "" {
		add("user", "%q: %s", m.User, msg)
	}
	switch m.Kind {
	case KindPacket, KindEthernet:
	case "":
		add("kind", `required: "packet" or "ethernet"`)
	default:
		add("kind", `%q: must be "packet" or "ethernet"`, m.Kind)
	}
	return m, ps
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// userMessage checks the syntax of a user name or uid.
func userMessage(u string) string {
	if n, err := strconv.ParseUint(u, 10, 32); err == nil {
		if n == 0 {
			return "uid 0 is root; providers must run as an unprivileged user"
		}
		return ""
	}
	if u == "root" {
		return "providers must run as an unprivileged user, not root"
	}
	if len(u) > 256 || u[0] == '-' || strings.ContainsFunc(u, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.' || r == '$')
	}) {
		return "not a user name or a numeric uid"
	}
	return ""
}

// CheckID reports whether id can identify a provider (see the package
// documentation for the rule).
func CheckID(id string) error {
	if id == "" {
		return errors.New("provider id is empty")
	}
	if msg := providerid.Problem(id); msg != "" {
		return fmt.Errorf("provider id %q: %s", id, msg)
	}
	return nil
}

// jsonMessage describes a JSON decoding error without the "json: " prefix,
// with a line and column for syntax errors.
func jsonMessage(data []byte, err error) string {
	var serr *json.SyntaxError
	var terr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: the file is empty or cut short"
	case errors.As(err, &serr):
		before := data[:min(max(serr.Offset-1, 0), int64(len(data)))]
		line := bytes.Count(before, []byte("\n")) + 1
		col := len(before) - bytes.LastIndexByte(before, '\n')
		return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(serr.Error(), "json: "))
	case errors.As(err, &terr):
		if terr.Field == "" {
			return "the file must hold a JSON object, not " + terr.Value
		}
		return fmt.Sprintf("%s: must be a string, not %s", terr.Field, terr.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
