//go:build !linux

package cli

import "os"

// isTerminal reports false: progress indicators are shown on Linux only.
func isTerminal(*os.File) bool { return false }
