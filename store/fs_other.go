//go:build !unix

package store

import (
	"errors"
	"io/fs"
	"os"
)

func readChecked(path string, uid int, limit int64) ([]byte, fs.FileInfo, error) {
	return nil, nil, errors.ErrUnsupported
}

func prepareDir(dir string, uid int) (string, error) { return "", errors.ErrUnsupported }

func writeAtomic(dir, name string, data []byte) error { return errors.ErrUnsupported }

func removeSynced(dir, name string) error { return errors.ErrUnsupported }

func lockDir(dir string) (*os.File, error) { return nil, errors.ErrUnsupported }
