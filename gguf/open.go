package gguf

import (
	"fmt"
	"io"
	"os"
)

// Open maps the GGUF file at path read-only and parses and validates its
// header. Where the file cannot be mapped it is read into memory instead.
func Open(path string) (*File, error) { return open(path, mapFile) }

func open(path string, mapFile func(*os.File, int) ([]byte, func() error, error)) (*File, error) {
	fp, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fp.Close()
	st, err := fp.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	size := st.Size()
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s: %d bytes is too large for this platform", path, size)
	}
	data, release, err := mapFile(fp, int(size))
	if err != nil {
		// Mapping fails on some file systems and for empty files; reading
		// costs memory but still works.
		data = make([]byte, size)
		if _, err := io.ReadFull(fp, data); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		release = func() error { return nil }
	}
	f, err := Parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	f.release = release
	return f, nil
}
