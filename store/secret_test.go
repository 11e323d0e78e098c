package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretNeverShows checks every way a secret could slip out: fmt verbs,
// log/slog with text and JSON handlers, JSON encoding, the configuration
// file, List and Get, errors and the store's own log.
func TestSecretNeverShows(t *testing.T) {
	const plain = "hunter2-S3CRET-9f1c"
	secret := NewSecretString(plain)
	holder := struct {
		Name   string
		Secret Secret
		Ptr    *Secret
	}{"x", secret, &secret}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, secret), fmt.Sprintf(verb, holder), fmt.Sprintf(verb, &secret))
	}
	outputs = append(outputs, secret.String(), secret.GoString(), fmt.Sprint(secret), fmt.Sprintln(secret))

	var logs logBuffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("secret", "s", secret, "p", &secret, "holder", holder, slog.Any("any", secret))
	}
	if _, err := json.Marshal(secret); err == nil {
		t.Error("json.Marshal of a Secret succeeded")
	}
	if b, err := json.Marshal(holder); err == nil {
		t.Errorf("json.Marshal of a struct holding a Secret succeeded: %s", b)
	}

	// The store itself, logging at debug level.
	dir := t.TempDir() + "/c"
	s, err := Open(dir, slogText(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Create(full(), &secret)
	if err != nil {
		t.Fatal(err)
	}
	other := NewSecretString(plain + "-2")
	c.Description = "changed"
	if c, err = s.Update(c, &other); err != nil {
		t.Fatal(err)
	}
	bad := c
	bad.ProviderID = ""
	_, err = s.Update(bad, &secret)
	outputs = append(outputs, err.Error())
	_, err = s.Create(c, &secret)
	outputs = append(outputs, err.Error())
	for _, c := range s.List() {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b), fmt.Sprintf("%+v", c))
		if !c.HasSecret {
			t.Error("HasSecret false")
		}
	}
	got, err := s.Get(c.Name)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, fmt.Sprintf("%#v", got))
	// An unreadable secret file makes an error that names the path only.
	path := filepath.Join(dir, "secrets", c.Name)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = s.Secret(c.Name)
	if err == nil {
		t.Error("Secret read a file open to group")
	} else {
		outputs = append(outputs, err.Error())
	}
	os.Chmod(path, 0o600)
	if got, err := s.Secret(c.Name); err != nil || string(got.Reveal()) != plain+"-2" {
		t.Errorf("Secret: %v", err)
	}
	outputs = append(outputs, logs.String())

	// Files other than the secret file.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == path {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, p+": "+string(b))
		return nil
	})

	for _, out := range outputs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, fmt.Sprintf("%x", plain)[:12]) {
			t.Errorf("the secret shows in %q", out)
		}
	}
	if !strings.Contains(logs.String(), "[redacted]") {
		t.Error("the log does not show [redacted]")
	}
}

func TestSecretValue(t *testing.T) {
	b := []byte("abc")
	s := NewSecret(b)
	b[0] = 'x'
	if string(s.Reveal()) != "abc" {
		t.Error("NewSecret did not copy")
	}
	r := s.Reveal()
	r[0] = 'y'
	if string(s.Reveal()) != "abc" {
		t.Error("Reveal did not copy")
	}
	if s.Len() != 3 || s.IsZero() || !NewSecret(nil).IsZero() {
		t.Error("Len or IsZero wrong")
	}
	if _, err := s.MarshalText(); !errors.Is(err, errMarshalSecret) {
		t.Error("MarshalText succeeded")
	}
}
