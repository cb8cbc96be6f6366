package kindnode

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// tarEntry is one regular file of a tar stream: its content comes from data,
// or from the file at src when data is nil.
type tarEntry struct {
	name string // path inside the archive, without a leading slash
	mode int64
	data []byte
	src  string
}

// writeTar writes entries as a tar stream owned by root, adding each parent
// folder (mode 0755) before the first file in it.
func writeTar(w io.Writer, entries []tarEntry) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{".": true, "": true}
	var addDir func(string) error
	addDir = func(d string) error {
		if dirs[d] {
			return nil
		}
		if err := addDir(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, Format: tar.FormatPAX})
	}
	for _, e := range entries {
		name := strings.TrimPrefix(path.Clean(e.name), "/")
		if err := addDir(path.Dir(name)); err != nil {
			return fmt.Errorf("writing tar: %w", err)
		}
		var r io.Reader
		size := int64(len(e.data))
		if e.data == nil {
			f, err := os.Open(e.src)
			if err != nil {
				return fmt.Errorf("adding %s to tar: %w", e.src, err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("adding %s to tar: %w", e.src, err)
			}
			r, size = f, st.Size()
		} else {
			r = strings.NewReader(string(e.data))
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: e.mode, Size: size, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("writing tar: %w", err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("writing %s to tar: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing tar: %w", err)
	}
	return nil
}

// tarStream returns a reader of the tar of entries, written as it is read.
func tarStream(entries []tarEntry) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, entries)) }()
	return pr
}
