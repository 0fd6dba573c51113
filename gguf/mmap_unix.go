//go:build unix

package gguf

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of fp read-only and shared, so that the kernel's
// page cache backs tensor data and several opens of a model share memory.
func mapFile(fp *os.File, size int) ([]byte, func() error, error) {
	if size == 0 {
		return nil, nil, errors.New("cannot map an empty file")
	}
	data, err := unix.Mmap(int(fp.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
