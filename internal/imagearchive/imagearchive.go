package imagearchive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// MaxJSON bounds the JSON files (manifests, indexes, configs) Read keeps in
// memory; a larger one is passed over.
const MaxJSON = 64 << 20

// ErrZstd means a layer is zstd-compressed, which devenv does not read.
var ErrZstd = errors.New("a zstd-compressed layer, which devenv does not read")

// Compression is how a layer is stored, told by its first bytes.
type Compression int

// The compressions Sniff tells apart.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

// Sniff tells the compression of a layer by its first (at least four)
// bytes.
func Sniff(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return Uncompressed
}

// Decompress returns the tar stream of the layer r holds: r itself when
// uncompressed, decompressed when gzip. A zstd layer gives ErrZstd.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	head, _ := br.Peek(4)
	return decompress(br, Sniff(head))
}

func decompress(br *bufio.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("decompressing: %w", err)
		}
		return zr, nil
	case Zstd:
		return nil, ErrZstd
	}
	return io.NopCloser(br), nil
}

// BlobDigest returns sha256:<hex> for an OCI layout blob path
// (blobs/sha256/<hex>), "" for any other path.
func BlobDigest(name string) string {
	hx, ok := strings.CutPrefix(name, "blobs/sha256/")
	if !ok || len(hx) != 64 || strings.Trim(hx, "0123456789abcdef") != "" {
		return ""
	}
	return "sha256:" + hx
}

// BlobPath is the path of the blob of digest (alg:hex) in an OCI layout.
func BlobPath(digest string) string {
	alg, hx, _ := strings.Cut(digest, ":")
	return "blobs/" + alg + "/" + hx
}

// cleanPath is an archive path as Archive's maps hold it: no leading
// slash, no dot parts.
func cleanPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// Entry is a regular file of the archive that may be a layer, as the
// stream passes it: Read hands it to the caller's function, which may read
// it (as stored, or through Tar) as far as it needs.
type Entry struct {
	Name        string // the path in the archive, cleaned
	Size        int64  // as stored
	Compression Compression
	br          *bufio.Reader
}

// Read reads the entry as stored (compressed or not).
func (e *Entry) Read(p []byte) (int, error) { return e.br.Read(p) }

// Tar returns the entry's content as a tar stream: decompressed when gzip,
// ErrZstd (wrapped, naming the entry) when zstd. Close it when done.
func (e *Entry) Tar() (io.ReadCloser, error) {
	rc, err := decompress(e.br, e.Compression)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Name, err)
	}
	return rc, nil
}

// BlobDigest is the digest the entry's path names (an OCI layout blob),
// "" for any other path.
func (e *Entry) BlobDigest() string { return BlobDigest(e.Name) }

// File is what Read noted of an entry it handed to the caller.
type File struct {
	Name        string
	Size        int64
	Digest      string // sha256:<hex> of the bytes as stored
	Compression Compression
}

// Archive is what Read kept of a `docker save` archive: its JSON files, the
// other regular files it passed to the caller, and its links.
type Archive struct {
	json  map[string][]byte
	big   map[string]int64 // JSON files larger than MaxJSON, not kept
	files map[string]File
	links map[string]string // path -> target path
}

// Read reads the `docker save` archive stream r in one pass. It keeps the
// JSON files in memory and calls layer (when not nil) with every other
// regular file, in the archive's order; what layer leaves unread is read
// past. It checks every OCI layout blob against the digest its path names.
// An error from layer ends the read and is returned as it is.
func Read(r io.Reader, layer func(*Entry) error) (*Archive, error) {
	a := &Archive{json: map[string][]byte{}, big: map[string]int64{}, files: map[string]File{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	br := bufio.NewReaderSize(nil, 1<<20)
	hsh := sha256.New()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		name := cleanPath(h.Name)
		switch h.Typeflag {
		case tar.TypeSymlink:
			a.links[name] = cleanPath(path.Join(path.Dir(name), h.Linkname))
			continue
		case tar.TypeLink:
			a.links[name] = cleanPath(h.Linkname)
			continue
		case tar.TypeReg:
		default:
			continue
		}
		hsh.Reset()
		br.Reset(io.TeeReader(tr, hsh))
		head, _ := br.Peek(512)
		switch {
		case looksJSON(head) && h.Size <= MaxJSON:
			b, err := io.ReadAll(br)
			if err != nil {
				return nil, fmt.Errorf("reading %s of the archive: %w", name, err)
			}
			a.json[name] = b
		case looksJSON(head):
			a.big[name] = h.Size
		default:
			e := &Entry{Name: name, Size: h.Size, Compression: Sniff(head), br: br}
			if layer != nil {
				if err := layer(e); err != nil {
					return nil, err
				}
			}
			a.files[name] = File{Name: name, Size: h.Size, Compression: e.Compression}
		}
		if _, err := io.Copy(io.Discard, br); err != nil {
			return nil, fmt.Errorf("reading %s of the archive: %w", name, err)
		}
		digest := "sha256:" + hex.EncodeToString(hsh.Sum(nil))
		if f, ok := a.files[name]; ok {
			f.Digest = digest
			a.files[name] = f
		}
		if want := BlobDigest(name); want != "" && want != digest {
			return nil, fmt.Errorf("blob %s holds content of digest %s", name, digest)
		}
	}
}

// looksJSON tells a JSON file from a layer by its first bytes: a JSON
// object or array, and not a tar header (whose first bytes are a file
// name, which may start with a brace).
func looksJSON(head []byte) bool {
	if len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")) {
		return false
	}
	t := bytes.TrimLeft(head, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// Resolve follows links from path p to the path of a regular file.
func (a *Archive) Resolve(p string) string {
	p = cleanPath(p)
	for range 16 {
		t, ok := a.links[p]
		if !ok {
			break
		}
		p = t
	}
	return p
}

// File returns what Read noted of the non-JSON regular file at p (links
// followed).
func (a *Archive) File(p string) (File, bool) {
	f, ok := a.files[a.Resolve(p)]
	return f, ok
}

// JSON returns the JSON file at p (links followed).
func (a *Archive) JSON(p string) ([]byte, bool) {
	b, ok := a.json[a.Resolve(p)]
	return b, ok
}

// has tells whether the archive holds a regular file at p.
func (a *Archive) has(p string) bool {
	p = a.Resolve(p)
	_, j := a.json[p]
	_, f := a.files[p]
	_, b := a.big[p]
	return j || f || b
}

// jsonAt returns the JSON file at p, or an error saying why not.
func (a *Archive) jsonAt(p string) ([]byte, error) {
	r := a.Resolve(p)
	if b, ok := a.json[r]; ok {
		return b, nil
	}
	if n, ok := a.big[r]; ok {
		return nil, fmt.Errorf("%s is %d bytes of JSON, more than devenv reads", p, n)
	}
	if _, ok := a.files[r]; ok {
		return nil, fmt.Errorf("%s is not JSON", p)
	}
	return nil, fmt.Errorf("the archive has no %s", p)
}
