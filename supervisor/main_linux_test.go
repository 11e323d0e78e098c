package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/testproc"
)

// childEnv selects the behaviour of the test binary when it runs as a
// provider (see childMain).
const childEnv = "SUPERVISOR_TEST_CHILD"

// childPath is a copy of the test binary in a directory that every user
// may enter, so that a provider running as nobody can execute it.
var childPath string

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(mode))
	}
	os.Exit(testproc.Run(m, "supervisor-test-", func(dir string) (err error) {
		childPath, err = testproc.CopySelf(dir, "child")
		return err
	}))
}

// facts is what the "facts" child reports on its standard output.
type facts struct {
	UID, GID   int
	Groups     []int
	Cwd        string
	Env        []string
	Status     map[string]string // selected lines of /proc/self/status
	FDs        []string          // open descriptors, with what they point to
	PGID, PPID int
	PID        int
}

func childMain(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hello := providerproto.Hello{}
	switch mode {
	case "exit2":
		return 2
	case "abort":
		// The runtime raises SIGABRT after a panic.
		debug.SetTraceback("crash")
		panic("boom")
	case "silent":
		time.Sleep(time.Minute)
		return 0
	case "newer":
		hello = providerproto.Hello{ProtocolVersion: 3, MinProtocolVersion: 2}
	case "long-line":
		fmt.Println(strings.Repeat("x", 10000))
		fmt.Println("after")
	case "chatty":
		// Far more output than the pipe and the log queue hold.
		line := strings.Repeat("y", 100)
		for range 20000 {
			fmt.Println(line)
		}
	}
	facts := facts{
		UID: os.Getuid(), GID: os.Getgid(), Env: os.Environ(),
		PGID: syscall.Getpgrp(), PPID: os.Getppid(), PID: os.Getpid(),
		Status: map[string]string{},
	}
	facts.Groups, _ = os.Getgroups()
	facts.Cwd, _ = os.Getwd()
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "CapInh", "CapPrm", "CapEff", "CapAmb", "NoNewPrivs", "Groups":
				facts.Status[k] = strings.TrimSpace(v)
			}
		}
	}
	// Descriptors before the protocol connection opens its own.
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if target == "" || strings.HasPrefix(target, "anon_inode:") || strings.HasPrefix(target, "/sys/fs/cgroup/") {
			continue // the runtime's own, and the directory being read
		}
		facts.FDs = append(facts.FDs, e.Name()+"="+target)
	}
	data, _ := json.Marshal(facts)
	fmt.Println("FACTS " + string(data))

	conn, err := providerproto.FromEnv(providerproto.Config{Role: providerproto.RoleProvider})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := conn.Hello(ctx, hello); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		return 1
	}
	switch mode {
	case "group":
		// A child of our own, in our process group.
		attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
		pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "600"}, attr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("GRANDCHILD %d\n", pid)
	case "linger":
		// Ignore the end of the connection.
		<-conn.Done()
		time.Sleep(time.Minute)
		return 0
	}
	select {
	case <-conn.Done():
	case <-ctx.Done():
	}
	return 0
}
