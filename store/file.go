package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the configuration file format this
// package reads and writes. Files carry it as "schemaVersion".
const SchemaVersion = 1

// maxFileSize bounds the configuration and state files the store reads.
const maxFileSize = 1 << 20

// fileV1 is the configuration file, version 1: schemaVersion first, then the
// configuration's fields in their declaration order.
type fileV1 struct {
	SchemaVersion int `json:"schemaVersion"`
	Configuration
	// HasSecret shadows Configuration.HasSecret, which is derived and never
	// stored: it stays nil when writing and is refused when reading.
	HasSecret json.RawMessage `json:"hasSecret,omitempty"`
}

// SchemaVersionError reports a file of a schema version this package does
// not read. A Version above SchemaVersion means that a newer netext wrote
// the file.
type SchemaVersionError struct {
	Version int64 // 0 when the file has none
}

func (e *SchemaVersionError) Error() string {
	switch {
	case e.Version > SchemaVersion:
		return fmt.Sprintf("schemaVersion %d is newer than this netext understands (it reads %d): the file was written by a newer netext", e.Version, SchemaVersion)
	case e.Version == 0:
		return fmt.Sprintf("schemaVersion is missing or 0 (want %d)", SchemaVersion)
	}
	return fmt.Sprintf("unknown schemaVersion %d (want %d)", e.Version, SchemaVersion)
}

// encodeFile returns the configuration file text of c: indented JSON with a
// trailing newline. It leaves HasSecret out.
func encodeFile(c Configuration) ([]byte, error) {
	c.HasSecret = false
	b, err := json.MarshalIndent(fileV1{SchemaVersion: SchemaVersion, Configuration: c}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeFile parses the configuration file text data of the configuration
// called name, strictly: the schema version must be known, unknown fields
// are errors, the name must match and the result must pass Validate. A
// file written by hand may leave out generation (taken as 1), createdAt and
// modifiedAt (taken from modTime).
func decodeFile(data []byte, name string, modTime time.Time) (Configuration, error) {
	var probe struct {
		SchemaVersion json.RawMessage `json:"schemaVersion"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Configuration{}, jsonError(data, err)
	}
	if len(probe.SchemaVersion) == 0 || string(probe.SchemaVersion) == "null" {
		return Configuration{}, &SchemaVersionError{}
	}
	v, err := strconv.ParseInt(string(probe.SchemaVersion), 10, 64)
	if err != nil {
		return Configuration{}, fmt.Errorf("schemaVersion: %s: not an integer", probe.SchemaVersion)
	}
	if v != SchemaVersion {
		return Configuration{}, &SchemaVersionError{Version: v}
	}

	var f fileV1
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Configuration{}, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Configuration{}, errors.New("more data after the JSON object")
	}
	if f.HasSecret != nil {
		return Configuration{}, errors.New(`hasSecret: not stored in the file (the store derives it from the secret file); remove it`)
	}
	c := f.Configuration
	if c.Name != name {
		return Configuration{}, fmt.Errorf("name: %q does not match the file name %s.json", c.Name, name)
	}
	if c.Generation == 0 {
		c.Generation = 1
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = modTime
	}
	if c.ModifiedAt.IsZero() {
		c.ModifiedAt = modTime
	}
	c.normalize()
	if err := c.Validate(); err != nil {
		return Configuration{}, err
	}
	return c, nil
}

// jsonError turns an encoding/json error into a message that names the
// field or the position, without the "json: " prefix.
func jsonError(data []byte, err error) error {
	var serr *json.SyntaxError
	var terr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &serr) && serr.Offset >= int64(len(bytes.TrimRight(data, " \t\r\n"))):
		return errors.New("invalid JSON: the file is empty or cut short")
	case errors.As(err, &serr):
		before := data[:min(max(serr.Offset-1, 0), int64(len(data)))]
		line := bytes.Count(before, []byte("\n")) + 1
		col := len(before) - bytes.LastIndexByte(before, '\n')
		return fmt.Errorf("invalid JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(serr.Error(), "json: "))
	case errors.As(err, &terr):
		if terr.Field == "" {
			return fmt.Errorf("the file must hold a JSON object, not %s", terr.Value)
		}
		field := strings.TrimPrefix(terr.Field, "Configuration.") // fileV1 embeds Configuration
		return fmt.Errorf("%s: %s is not a valid %s", field, terr.Value, jsonType(terr.Type.Kind().String()))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: the file is empty or cut short")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func jsonType(kind string) string {
	switch {
	case kind == "bool":
		return "boolean"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "number of this range"
	case kind == "slice":
		return "list"
	case kind == "struct":
		return "object"
	}
	return kind
}

// LastError is the last reason a session of a configuration failed or
// disconnected (fetchLastDisconnectError). It survives daemon restarts.
type LastError struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// IsZero reports whether e records nothing.
func (e LastError) IsZero() bool { return e.Message == "" && e.At.IsZero() }

// stateV1 is the runtime state file of a configuration: facts the daemon
// needs across restarts that are not part of the configuration.
type stateV1 struct {
	SchemaVersion int        `json:"schemaVersion"`
	LastError     *LastError `json:"lastError,omitempty"`
}

func encodeState(st stateV1) ([]byte, error) {
	st.SchemaVersion = SchemaVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func decodeState(data []byte) (stateV1, error) {
	var st stateV1
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return stateV1{}, jsonError(data, err)
	}
	if st.SchemaVersion != SchemaVersion {
		return stateV1{}, &SchemaVersionError{Version: int64(st.SchemaVersion)}
	}
	return st, nil
}
