//go:build unix

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv makes TestCrashDuringWrites act as the child that writes
// until it is killed.
const crashChildEnv = "NETEXT_STORE_CRASH_CHILD_DIR"

// TestCrashDuringWrites kills a process with SIGKILL while it saves
// configurations, secrets and last errors as fast as it can, several times,
// and checks that every reopen finds only whole files: no problems, no
// leftover temporary files, generations that never go back, and a secret
// that belongs to the saved generation or, when the crash fell between the
// secret's write and the configuration's, to the next one.
func TestCrashDuringWrites(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir() + "/c"
	s := openAt(t, dir)
	for _, n := range []string{"a", "b"} {
		sec := NewSecretString(n + "-1")
		if _, err := s.Create(minimal(n), &sec); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	var last uint64 = 1
	for round := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashDuringWrites$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		// Wait until the child has saved a few more generations, then kill it.
		target := last + 20
		for ctx.Err() == nil && fileGeneration(dir, "a") < target {
			time.Sleep(5 * time.Millisecond)
		}
		if ctx.Err() != nil {
			cancel()
			t.Fatalf("round %d: the child did not reach generation %d", round, target)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		cancel()

		s := openAt(t, dir)
		if ps := s.Problems(); len(ps) != 0 {
			t.Fatalf("round %d: problems after a crash: %v", round, ps)
		}
		for _, n := range []string{"a", "b"} {
			c, err := s.Get(n)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if n == "a" {
				if c.Generation < last {
					t.Fatalf("round %d: generation went back from %d to %d", round, last, c.Generation)
				}
				last = c.Generation
			}
			sec, err := s.Secret(n)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			got := string(sec.Reveal())
			if got != fmt.Sprintf("%s-%d", n, c.Generation) && got != fmt.Sprintf("%s-%d", n, c.Generation+1) {
				t.Fatalf("round %d: configuration %s at generation %d has the secret %q", round, n, c.Generation, got)
			}
		}
		entries, _ := filepath.Glob(filepath.Join(dir, "*", tempPrefix+"*"))
		top, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*"))
		if left := append(entries, top...); len(left) != 0 {
			t.Fatalf("round %d: temporary files after Open: %v", round, left)
		}
		s.Close()
	}
}

// fileGeneration reads the generation of a configuration file directly,
// without the store (whose lock the child holds); 0 when unreadable.
func fileGeneration(dir, name string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return 0
	}
	var f struct{ Generation uint64 }
	if json.Unmarshal(b, &f) != nil {
		return 0
	}
	return f.Generation
}

// crashChild saves changes to dir until it is killed.
func crashChild(dir string) {
	var s *Store
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		// The parent's store may still be closing.
		if s, err = Open(dir, nil); err == nil || !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(1)
	}
	deadline := time.Now().Add(time.Minute) // the parent kills it long before
	for i := 0; time.Now().Before(deadline); i++ {
		for _, n := range []string{"a", "b"} {
			c, err := s.Get(n)
			if err != nil {
				fmt.Fprintln(os.Stderr, "crash child:", err)
				os.Exit(1)
			}
			c.Description = strings.Repeat("x", i%500)
			sec := NewSecretString(fmt.Sprintf("%s-%d", n, c.Generation+1))
			if _, err := s.Update(c, &sec); err != nil {
				fmt.Fprintln(os.Stderr, "crash child:", err)
				os.Exit(1)
			}
			if err := s.SetLastError(n, fmt.Sprintf("error %d", i), time.Now()); err != nil {
				fmt.Fprintln(os.Stderr, "crash child:", err)
				os.Exit(1)
			}
		}
	}
	os.Exit(0)
}
