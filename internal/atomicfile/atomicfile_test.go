package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, o := range []Options{
		{Pattern: ".t-*", Mode: 0o600},
		{Pattern: ".t-*", Mode: 0o644, NoSync: true},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, []byte("old"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := WriteData(path, o, []byte("new")); err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if data, err := os.ReadFile(path); err != nil || string(data) != "new" {
			t.Errorf("%+v: content %q, %v", o, data, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != o.Mode {
			t.Errorf("%+v: mode %v, %v", o, fi.Mode(), err)
		}
		// A failing writer leaves the old file and no temporary file.
		boom := errors.New("boom")
		if err := Write(path, o, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("%+v: failing writer: %v", o, err)
		}
		if data, _ := os.ReadFile(path); string(data) != "new" {
			t.Errorf("%+v: after a failed write the content is %q", o, data)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".t-*")); len(left) != 0 {
			t.Errorf("%+v: temporary files left: %v", o, left)
		}
	}
}
