//go:build !linux

package demo

import (
	"context"
	"errors"
	"io"
)

// Run is only available on Linux.
func Run(ctx context.Context, opts Options) error {
	return errors.ErrUnsupported
}

// ServerMain is only available on Linux.
func ServerMain(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.ErrUnsupported
}
