//go:build !linux

package providertest

import (
	"errors"
	"os"
)

func checkSocket(f *os.File) error { return errors.ErrUnsupported }
