package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/util/validation"
)

//go:embed all:_files
var files embed.FS

// The forms devenv init writes: --example cosmos, --lang go, --lang java.
const (
	ExampleCosmos = "cosmos"
	LangGo        = "go"
	LangJava      = "java"
)

// Langs lists the --lang choices.
func Langs() []string { return []string{LangGo, LangJava} }

// Examples lists the --example choices.
func Examples() []string { return []string{ExampleCosmos} }

// templateSuffix marks a file to fill with Data; it is dropped when written.
const templateSuffix = ".tmpl"

// Data is what the templates are filled with.
type Data struct {
	Name string // the project name: a DNS-1123 label
}

// File is one file to write, its path relative to the project folder in
// slash form.
type File struct {
	Path    string
	Mode    fs.FileMode
	Content []byte
}

// Files returns the files of form (ExampleCosmos, LangGo or LangJava),
// sorted by path, with the templates filled.
func Files(form string, data Data) ([]File, error) {
	if !isForm(form) {
		return nil, fmt.Errorf("unknown form %q", form)
	}
	if err := CheckName(data.Name); err != nil {
		return nil, err
	}
	root := path.Join("_files", form)
	var out []File
	err := fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if strings.HasSuffix(rel, templateSuffix) {
			rel = strings.TrimSuffix(rel, templateSuffix)
			if b, err = fill(p, b, data); err != nil {
				return err
			}
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		out = append(out, File{Path: rel, Mode: mode, Content: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the %s files: %w", form, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func isForm(form string) bool {
	return form == ExampleCosmos || form == LangGo || form == LangJava
}

func fill(name string, text []byte, data Data) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("parsing template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("filling template %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// ErrExists is what a *ClashError is (errors.Is).
var ErrExists = errors.New("files exist")

// ClashError says which files Write would have overwritten; it wrote nothing.
type ClashError struct {
	Dir   string
	Paths []string // relative to Dir, slash form, sorted
}

func (e *ClashError) Error() string {
	return fmt.Sprintf("%s: %d of the files to write exist already (%s); nothing written",
		e.Dir, len(e.Paths), strings.Join(e.Paths, ", "))
}

// Is reports whether target is ErrExists.
func (e *ClashError) Is(target error) bool { return target == ErrExists }

// Write writes files into dir, creating dir and the folders below it as
// needed. When any of the files (or something in the way of one) exists, it
// writes nothing and returns a *ClashError naming every clash. When a write
// fails, it removes the files it wrote before returning the error.
func Write(dir string, fl []File) error {
	var clashes []string
	for _, f := range fl {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path))); err == nil || !errors.Is(err, fs.ErrNotExist) {
			clashes = append(clashes, f.Path)
		}
	}
	if len(clashes) > 0 {
		sort.Strings(clashes)
		return &ClashError{Dir: dir, Paths: clashes}
	}
	var written []string
	undo := func() {
		for i := len(written) - 1; i >= 0; i-- {
			_ = os.Remove(written[i])
		}
	}
	for _, f := range fl {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			undo()
			return fmt.Errorf("creating folder for %s: %w", f.Path, err)
		}
		if err := writeNew(p, f.Content, f.Mode); err != nil {
			undo()
			return err
		}
		written = append(written, p)
	}
	return nil
}

// writeNew creates p, failing if it exists, and writes b into it.
func writeNew(p string, b []byte, mode fs.FileMode) error {
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		os.Remove(p)
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := fh.Close(); err != nil {
		os.Remove(p)
		return fmt.Errorf("writing %s: %w", p, err)
	}
	// The umask may have taken bits the scripts need.
	if err := os.Chmod(p, mode); err != nil {
		os.Remove(p)
		return fmt.Errorf("setting the mode of %s: %w", p, err)
	}
	return nil
}

var notName = regexp.MustCompile(`[^a-z0-9]+`)

// ProjectName makes a valid project name (a DNS-1123 label) from a folder's
// base name: lower case, runs of other characters become one '-', no '-' at
// either end, at most 63 characters. It returns "" when nothing is left.
func ProjectName(base string) string {
	s := notName.ReplaceAllString(strings.ToLower(base), "-")
	s = strings.Trim(s, "-")
	if len(s) > validation.DNS1123LabelMaxLength {
		s = strings.TrimRight(s[:validation.DNS1123LabelMaxLength], "-")
	}
	return s
}

// CheckName returns an error saying why name is not a valid project name, or nil.
func CheckName(name string) error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Errorf("%q is not a valid project name: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}
