//go:build !unix

package gguf

import (
	"errors"
	"os"
)

// mapFile is not available here; Open falls back to reading the file.
func mapFile(fp *os.File, size int) ([]byte, func() error, error) {
	return nil, nil, errors.New("memory mapping not supported on this platform")
}
