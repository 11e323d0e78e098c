package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/internal/nettest"
)

var t0 = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)

func TestLifecycle(t *testing.T) {
	s, dir := openTest(t)
	s.now = fixedClock(t0)

	c, err := s.Create(minimal("b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := minimal("b")
	want.RoutingMethod = RoutingDestinationIP
	want.Generation = 1
	want.CreatedAt, want.ModifiedAt = t0.Add(time.Second), t0.Add(time.Second)
	if diff := cmp.Diff(c, want); diff != "" {
		t.Errorf("Create (-got +want):\n%s", diff)
	}
	if _, err := s.Create(full(), nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("b")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Get (-got +want):\n%s", diff)
	}
	var names []string
	for _, c := range s.List() {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff(names, []string{"b", "office-1"}); diff != "" {
		t.Errorf("List names (-got +want):\n%s", diff)
	}

	got.Description = "changed"
	got.CreatedAt = time.Time{} // ignored
	upd, err := s.Update(got, nil)
	if err != nil {
		t.Fatal(err)
	}
	want.Description = "changed"
	want.Generation = 2
	want.ModifiedAt = t0.Add(3 * time.Second)
	if diff := cmp.Diff(upd, want); diff != "" {
		t.Errorf("Update (-got +want):\n%s", diff)
	}

	en, err := s.SetEnabled("b", true, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !en.Enabled || en.Generation != 3 {
		t.Errorf("SetEnabled: enabled %v generation %d, want true 3", en.Enabled, en.Generation)
	}

	if err := s.Delete("b", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file after Delete: %v", err)
	}
}

// TestReopen checks that every field, the secret and the last error survive
// closing and opening the store.
func TestReopen(t *testing.T) {
	s, dir := openTest(t)
	secret := NewSecretString("private key material")
	c, err := s.Create(full(), &secret)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasSecret {
		t.Error("HasSecret false after Create with a secret")
	}
	m, err := s.Create(minimal("min"), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 2, 3, 4, 5, 6, 7, time.FixedZone("CET", 3600))
	if err := s.SetLastError("office-1", "handshake timed out", at); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := openAt(t, dir)
	if diff := cmp.Diff(s2.List(), []Configuration{m, c}); diff != "" {
		t.Errorf("List after reopen (-got +want):\n%s", diff)
	}
	got, err := s2.Secret("office-1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(secret) {
		t.Error("secret changed across reopen")
	}
	le, err := s2.LastError("office-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(le, LastError{Message: "handshake timed out", At: at.UTC()}); diff != "" {
		t.Errorf("LastError (-got +want):\n%s", diff)
	}
	if len(s2.Problems()) != 0 {
		t.Errorf("problems: %v", s2.Problems())
	}
}

func TestErrors(t *testing.T) {
	s, _ := openTest(t)
	c, err := s.Create(minimal("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(minimal("a"), nil); !errors.Is(err, ErrExists) {
		t.Errorf("Create twice: %v, want ErrExists", err)
	}
	for name, err := range map[string]error{
		"Get":          func() error { _, err := s.Get("nope"); return err }(),
		"Update":       func() error { _, err := s.Update(minimal("nope"), nil); return err }(),
		"SetEnabled":   func() error { _, err := s.SetEnabled("nope", true, 1); return err }(),
		"Delete":       s.Delete("nope", 1),
		"Secret":       func() error { _, err := s.Secret("nope"); return err }(),
		"SetLastError": s.SetLastError("nope", "x", t0),
		"LastError":    func() error { _, err := s.LastError("nope"); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) || !IsNotFound(err) {
			t.Errorf("%s of an unknown name: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := s.Secret("a"); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Secret without one: %v, want ErrNoSecret", err)
	}
	bad := c
	bad.ProviderID = "x"
	if _, err := s.Update(bad, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Update with an invalid configuration: %v, want ErrInvalid", err)
	}
	if _, err := s.Create(Configuration{}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Create of an invalid configuration: %v, want ErrInvalid", err)
	}
	huge := NewSecret(make([]byte, MaxSecretLen+1))
	if _, err := s.Create(minimal("huge"), &huge); !errors.Is(err, ErrInvalid) {
		t.Errorf("Create with a huge secret: %v, want ErrInvalid", err)
	}
	s.Close()
	if _, err := s.Get("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Create(minimal("b"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStale(t *testing.T) {
	s, _ := openTest(t)
	c, err := s.Create(minimal("office"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Description += "x"
		if c, err = s.Update(c, nil); err != nil {
			t.Fatal(err)
		}
	}
	old := c
	old.Generation = 3
	old.Username = "bob"
	_, err = s.Update(old, nil)
	const want = "configuration office was changed since generation 3 (now 4): reload it and try again"
	if err == nil || err.Error() != want {
		t.Errorf("Update from generation 3: %v, want %q", err, want)
	}
	var serr *StaleError
	if !errors.As(err, &serr) || !errors.Is(err, ErrStale) || !IsStale(err) {
		t.Errorf("Update from generation 3: %v is not a *StaleError that Is ErrStale", err)
	} else if *serr != (StaleError{Name: "office", Have: 3, Current: 4}) {
		t.Errorf("StaleError = %+v", *serr)
	}
	if _, err := s.SetEnabled("office", true, 3); !errors.Is(err, ErrStale) {
		t.Errorf("SetEnabled from generation 3: %v, want ErrStale", err)
	}
	if err := s.Delete("office", 3); !errors.Is(err, ErrStale) {
		t.Errorf("Delete from generation 3: %v, want ErrStale", err)
	}
	if got, _ := s.Get("office"); !got.Equal(c) {
		t.Errorf("a refused change changed the configuration:\n%s", cmp.Diff(got, c))
	}
}

// TestUpdateNoChange checks that saving an unchanged configuration writes
// nothing and keeps the generation.
func TestUpdateNoChange(t *testing.T) {
	s, _ := openTest(t)
	c, err := s.Create(full(), nil)
	if err != nil {
		t.Fatal(err)
	}
	same := c.Clone()
	same.ProviderConfiguration = []byte(" { \"mtu\" : 1420, \"peers\":[{\"publicKey\":\"abc=\",\"allowedIPs\":[\"0.0.0.0/0\"]}],\"nested\":{\"big\":12345678901234567890}}")
	got, err := s.Update(same, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, c); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	empty := NewSecret(nil)
	if got, err = s.Update(c, &empty); err != nil || got.Generation != c.Generation {
		t.Errorf("removing an absent secret: generation %d, error %v; want %d, nil", got.Generation, err, c.Generation)
	}
	if got, err = s.SetEnabled(c.Name, c.Enabled, c.Generation); err != nil || got.Generation != c.Generation {
		t.Errorf("SetEnabled to the same value: generation %d, error %v; want %d, nil", got.Generation, err, c.Generation)
	}
}

func TestSecretKeepReplaceRemove(t *testing.T) {
	s, dir := openTest(t)
	one, two, empty := NewSecretString("one"), NewSecretString("two"), NewSecret(nil)
	c, err := s.Create(minimal("a"), &one)
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, c Configuration, want *Secret) {
		t.Helper()
		if c.HasSecret != (want != nil) {
			t.Errorf("%s: HasSecret = %v", step, c.HasSecret)
		}
		got, err := s.Secret("a")
		switch {
		case want == nil && !errors.Is(err, ErrNoSecret):
			t.Errorf("%s: Secret: %v, want ErrNoSecret", step, err)
		case want != nil && (err != nil || !got.Equal(*want)):
			t.Errorf("%s: Secret: wrong secret or error %v", step, err)
		}
		_, err = os.Stat(filepath.Join(dir, "secrets", "a"))
		if (err == nil) != (want != nil) {
			t.Errorf("%s: secret file: %v", step, err)
		}
	}
	check("create", c, &one)
	c.Description = "keep"
	c, err = s.Update(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("keep", c, &one)
	c, err = s.Update(c, &two)
	if err != nil {
		t.Fatal(err)
	}
	if c.Generation != 3 {
		t.Errorf("replacing the secret: generation %d, want 3", c.Generation)
	}
	check("replace", c, &two)
	c, err = s.Update(c, &empty)
	if err != nil {
		t.Fatal(err)
	}
	check("remove", c, nil)
	c, err = s.Update(c, &one)
	if err != nil {
		t.Fatal(err)
	}
	check("add again", c, &one)
}

// TestConcurrentUpdate races many writers on each generation: exactly one
// of them wins, and every other one gets ErrStale.
func TestConcurrentUpdate(t *testing.T) {
	s, dir := openTest(t)
	if _, err := s.Create(minimal("race"), nil); err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 16, 10
	for round := range rounds {
		base, err := s.Get("race")
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []int
			others  []error
		)
		for w := range writers {
			wg.Go(func() {
				c := base.Clone()
				c.Description = fmt.Sprintf("round %d writer %d", round, w)
				var err error
				if w%4 == 0 {
					_, err = s.SetEnabled("race", !c.Enabled, c.Generation)
				} else {
					_, err = s.Update(c, nil)
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					winners = append(winners, w)
				} else if !errors.Is(err, ErrStale) {
					others = append(others, err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 || len(others) != 0 {
			t.Fatalf("round %d: winners %v, unexpected errors %v; want one winner", round, winners, others)
		}
		got, _ := s.Get("race")
		if got.Generation != base.Generation+1 {
			t.Fatalf("round %d: generation %d, want %d", round, got.Generation, base.Generation+1)
		}
	}
	s.Close()
	s2 := openAt(t, dir)
	if got, _ := s2.Get("race"); got.Generation != rounds+1 {
		t.Errorf("generation on disk %d, want %d", got.Generation, rounds+1)
	}
}

func TestModes(t *testing.T) {
	s, dir := openTest(t)
	secret := NewSecretString("s")
	if _, err := s.Create(minimal("a"), &secret); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastError("a", "boom", t0); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, path)
		got = append(got, fmt.Sprintf("%s %v", rel, fi.Mode()))
		return nil
	})
	want := []string{
		". drwx------",
		".lock -rw-------",
		"a.json -rw-------",
		"secrets drwx------",
		"secrets/a -rw-------",
		"state drwx------",
		"state/a.json -rw-------",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("files and modes (-got +want):\n%s", diff)
	}

	// A directory open to others is closed at Open.
	s.Close()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openAt(t, dir).Close()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode after Open: %v, want 0700", fi.Mode().Perm())
	}
}

func TestLock(t *testing.T) {
	s, dir := openTest(t)
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	s.Close()
	openAt(t, dir)
}

// TestBrokenFiles puts broken files next to good ones: each is reported
// with its path and reason, and the good ones load.
func TestBrokenFiles(t *testing.T) {
	s, dir := openTest(t)
	for _, n := range []string{"good1", "good2"} {
		if _, err := s.Create(minimal(n), nil); err != nil {
			t.Fatal(err)
		}
	}
	secret := NewSecretString("kept")
	if _, err := s.Create(minimal("perm"), &secret); err != nil {
		t.Fatal(err)
	}
	s.Close()

	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	const ok = `"providerID":"org.example.a"`
	write("badjson.json", `{"schemaVersion":1,`, 0o600)
	write("unknown.json", `{"schemaVersion":1,"name":"unknown",`+ok+`,"colour":"blue"}`, 0o600)
	write("newer.json", `{"schemaVersion":2,"name":"newer"}`, 0o600)
	write("invalid.json", `{"schemaVersion":1,"name":"invalid","providerID":"x","onDemand":{"enabled":true,"rules":[{"action":"connect","probeURL":"ftp://x"}]}}`, 0o600)
	write("mismatch.json", `{"schemaVersion":1,"name":"other",`+ok+`}`, 0o600)
	write("bad name.json", `{}`, 0o600)
	write("notes.txt", `not a configuration`, 0o600)
	if err := os.Chmod(filepath.Join(dir, "perm.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "good1.json"), filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		write("owner.json", `{"schemaVersion":1,"name":"owner",`+ok+`}`, 0o600)
		if err := os.Chown(filepath.Join(dir, "owner.json"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}

	var logs logBuffer
	s2, err := Open(dir, slogText(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var names []string
	for _, c := range s2.List() {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff(names, []string{"good1", "good2"}); diff != "" {
		t.Errorf("loaded (-got +want):\n%s", diff)
	}
	var got []string
	for _, p := range s2.Problems() {
		got = append(got, p.Name+" | "+p.String())
	}
	want := []string{
		" | " + dir + "/bad name.json: the file name is not NAME.json with a valid configuration name: configuration name \"bad name\" contains ' '; use only letters, digits, '.', '_' and '-'",
		"badjson | " + dir + "/badjson.json: invalid JSON: the file is empty or cut short",
		`invalid | ` + dir + `/invalid.json: invalid configuration: providerID: "x": must be a reverse-DNS name such as org.example.wireguard; onDemand.rules[0].probeURL: "ftp://x": must be an http or https URL`,
		"link | " + dir + "/link.json: is a symbolic link; the store reads only regular files",
		`mismatch | ` + dir + `/mismatch.json: name: "other" does not match the file name mismatch.json`,
		"newer | " + dir + "/newer.json: schemaVersion 2 is newer than this netext understands (it reads 1): the file was written by a newer netext",
		"owner | " + dir + "/owner.json: owned by uid 65534, not by uid 0 that runs the store",
		"perm | " + dir + "/perm.json: mode 0644 gives access to group or others; want 0600",
		`unknown | ` + dir + `/unknown.json: unknown field "colour"`,
	}
	if os.Geteuid() != 0 {
		want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "owner |") })
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("problems (-got +want):\n%s", diff)
	}
	for _, w := range want {
		file := strings.SplitN(strings.SplitN(w, " | ", 2)[1], ": ", 2)[0]
		if !strings.Contains(logs.String(), file) {
			t.Errorf("the log does not mention %s", file)
		}
	}

	// A broken configuration keeps its name and its secret.
	if _, err := s2.Get("perm"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "could not be loaded") {
		t.Errorf("Get of a broken configuration: %v", err)
	}
	if _, err := s2.Create(minimal("perm"), nil); !errors.Is(err, ErrExists) {
		t.Errorf("Create over a broken configuration: %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets", "perm")); err != nil {
		t.Errorf("the secret of a broken configuration was removed: %v", err)
	}
	// Deleting a broken one removes its files and its problem.
	if err := s2.Delete("perm", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets", "perm")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("secret after Delete: %v", err)
	}
	if slices.ContainsFunc(s2.Problems(), func(p LoadProblem) bool { return p.Name == "perm" }) {
		t.Error("the problem of a deleted file is still listed")
	}
	if _, err := s2.Create(minimal("perm"), nil); err != nil {
		t.Errorf("Create after deleting a broken file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("a file that is not a configuration was touched: %v", err)
	}
}

// TestCrashLeftovers simulates crashes at every step of a write: temporary
// files in each directory, and the secret and state of a configuration whose
// file was never written or already deleted. Open removes them and loads
// what was committed.
func TestCrashLeftovers(t *testing.T) {
	s, dir := openTest(t)
	secret := NewSecretString("s")
	c, err := s.Create(minimal("kept"), &secret)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	leftovers := []string{
		".tmp-kept.json-123",     // interrupted Update of kept
		".tmp-new.json-456",      // interrupted Create of new
		"secrets/.tmp-kept-789",  // interrupted secret replacement
		"secrets/orphan",         // Create crashed after the secret
		"state/.tmp-kept.json-1", // interrupted SetLastError
		"state/orphan.json",      // Delete crashed before removing state
	}
	for _, f := range leftovers {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(`{"schemaVersion":1,"name":"kept",`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2 := openAt(t, dir)
	for _, f := range leftovers {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived Open: %v", f, err)
		}
	}
	if diff := cmp.Diff(s2.List(), []Configuration{c}); diff != "" {
		t.Errorf("List (-got +want):\n%s", diff)
	}
	if got, err := s2.Secret("kept"); err != nil || !got.Equal(secret) {
		t.Errorf("Secret: %v", err)
	}
	if len(s2.Problems()) != 0 {
		t.Errorf("problems: %v", s2.Problems())
	}
}

func TestLastError(t *testing.T) {
	s, dir := openTest(t)
	c, err := s.Create(minimal("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if le, err := s.LastError("a"); err != nil || !le.IsZero() {
		t.Errorf("LastError of a new configuration: %+v, %v", le, err)
	}
	long := strings.Repeat("é", MaxLastErrorLen) // cut in the middle of a rune
	if err := s.SetLastError("a", long, t0); err != nil {
		t.Fatal(err)
	}
	le, _ := s.LastError("a")
	if len(le.Message) > MaxLastErrorLen || !strings.HasPrefix(long, le.Message) || len(le.Message) < MaxLastErrorLen-1 {
		t.Errorf("long message kept as %d bytes", len(le.Message))
	}
	if err := s.SetLastError("a", "connection refused", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("a"); got.Generation != c.Generation {
		t.Error("SetLastError changed the generation")
	}
	s.Close()
	s = openAt(t, dir)
	if le, _ := s.LastError("a"); le != (LastError{Message: "connection refused", At: t0}) {
		t.Errorf("after reopen: %+v", le)
	}
	if err := s.SetLastError("a", "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if le, _ := s.LastError("a"); !le.IsZero() {
		t.Errorf("after clearing: %+v", le)
	}
	if err := s.SetLastError("a", "again", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("a", c.Generation); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(minimal("a"), nil); err != nil {
		t.Fatal(err)
	}
	if le, _ := s.LastError("a"); !le.IsZero() {
		t.Errorf("a re-created configuration inherited the last error %+v", le)
	}
}

// TestWrongOwnerSecret checks that a secret file that is not the daemon's
// is refused, with its path and without its contents.
func TestWrongOwnerSecret(t *testing.T) {
	nettest.RequireRoot(t)
	s, dir := openTest(t)
	secret := NewSecretString("do-not-show-7731")
	if _, err := s.Create(minimal("a"), &secret); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "secrets", "a")
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := s.Secret("a")
	want := `reading the secret of "a" from ` + path + `: owned by uid 65534, not by uid 0 that runs the store`
	if err == nil || err.Error() != want {
		t.Errorf("Secret: %v, want %q", err, want)
	}
	// A directory of someone else's is refused by Open.
	other := t.TempDir() + "/other"
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(other, nil); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("Open of a directory owned by someone else: %v", err)
	}
}
