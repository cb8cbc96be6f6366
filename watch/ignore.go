package watch

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// rules decides which paths under one root are ignored or watched. Paths are
// slash-separated and relative to the root.
type rules struct {
	// ignore holds one matcher per source (.dockerignore, .gitignore, the
	// spec's Ignore); a path is ignored when any of them matches it.
	ignore []*patternmatcher.PatternMatcher
	// watch selects the paths that matter; nil means everything.
	watch *patternmatcher.PatternMatcher
}

// loadRules reads root's .dockerignore (unless the spec lists Watch patterns,
// see Spec) and .gitignore and compiles them with the spec's patterns.
func loadRules(s Spec) (*rules, error) {
	r := &rules{}
	if len(s.Watch) == 0 {
		pats, err := readIgnoreFile(filepath.Join(s.Root, ".dockerignore"), false)
		if err != nil {
			return nil, err
		}
		if err := r.addIgnore(".dockerignore", pats); err != nil {
			return nil, err
		}
	}
	pats, err := readIgnoreFile(filepath.Join(s.Root, ".gitignore"), true)
	if err != nil {
		return nil, err
	}
	if err := r.addIgnore(".gitignore", pats); err != nil {
		return nil, err
	}
	if err := r.addIgnore("ignore", cleanPatterns(s.Ignore)); err != nil {
		return nil, fmt.Errorf("service %q: %w", s.Service, err)
	}
	if len(s.Watch) > 0 {
		pm, err := patternmatcher.New(cleanPatterns(s.Watch))
		if err != nil {
			return nil, fmt.Errorf("service %q: watch patterns %q: %w", s.Service, s.Watch, err)
		}
		r.watch = pm
	}
	return r, nil
}

func (r *rules) addIgnore(source string, pats []string) error {
	if len(pats) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return fmt.Errorf("%s patterns %q: %w", source, pats, err)
	}
	r.ignore = append(r.ignore, pm)
	return nil
}

// ignored reports whether the file or directory rel is excluded.
func (r *rules) ignored(rel string) bool {
	if rel == "." || rel == "" {
		return false
	}
	if hasGitComponent(rel) || isTempFile(path.Base(rel)) {
		return true
	}
	for _, pm := range r.ignore {
		if m, err := pm.MatchesOrParentMatches(rel); err == nil && m {
			return true
		}
	}
	return false
}

// skipDir reports whether nothing under directory rel can ever be reported,
// so that the directory need not be watched at all.
func (r *rules) skipDir(rel string) bool {
	if rel == "." || rel == "" {
		return false
	}
	if hasGitComponent(rel) {
		return true
	}
	for _, pm := range r.ignore {
		if pm.Exclusions() {
			// A "!keep" line may re-include something below: watch it.
			continue
		}
		// The probe catches "dir/**" and "dir/*", which match what is inside
		// the directory but not the directory itself.
		for _, p := range []string{rel, rel + "/\x00"} {
			if m, err := pm.MatchesOrParentMatches(p); err == nil && m {
				return true
			}
		}
	}
	return false
}

// wanted reports whether a change to rel concerns the service.
func (r *rules) wanted(rel string) bool {
	if r.ignored(rel) {
		return false
	}
	if r.watch == nil {
		return true
	}
	m, err := r.watch.MatchesOrParentMatches(rel)
	return err == nil && m
}

func hasGitComponent(rel string) bool {
	for _, c := range strings.Split(rel, "/") {
		if c == ".git" {
			return true
		}
	}
	return false
}

// isTempFile reports whether base is a file editors write and delete while
// saving: vim swap and backup files, emacs lock and auto-save files, vim's
// "4913" probe, JetBrains safe-write files and *.tmp.
func isTempFile(base string) bool {
	switch {
	case base == "4913",
		strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"),
		strings.HasSuffix(base, "~"),
		strings.HasPrefix(base, ".#"),
		len(base) > 1 && strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"),
		strings.HasSuffix(base, "___jb_tmp___"), strings.HasSuffix(base, "___jb_old___"),
		strings.HasSuffix(base, ".tmp"):
		return true
	}
	return false
}

// readIgnoreFile reads a .dockerignore or (with git set) a .gitignore file. A
// missing file yields no patterns.
func readIgnoreFile(name string, git bool) ([]string, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer f.Close()
	if !git {
		pats, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return pats, nil
	}
	var pats []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := gitPattern(sc.Text()); ok {
			pats = append(pats, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return pats, nil
}

// gitPattern translates one .gitignore line into the .dockerignore syntax the
// matcher understands: a pattern without a slash matches at any depth, a
// leading slash anchors it at the root. A trailing slash (directories only)
// is approximated by matching files and directories alike.
func gitPattern(line string) (string, bool) {
	line = strings.TrimRight(line, " \t\r")
	if line == "" || strings.HasPrefix(line, "#") {
		return "", false
	}
	neg := ""
	if strings.HasPrefix(line, "!") {
		neg, line = "!", line[1:]
	}
	line = strings.TrimPrefix(line, "\\")
	line = strings.TrimSuffix(line, "/")
	if line == "" {
		return "", false
	}
	if strings.Contains(line, "/") {
		line = strings.TrimPrefix(line, "/")
	} else {
		line = "**/" + line
	}
	return neg + line, true
}

// cleanPatterns normalises user patterns the way .dockerignore lines are.
func cleanPatterns(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	pats, err := ignorefile.ReadAll(strings.NewReader(strings.Join(in, "\n")))
	if err != nil {
		return in
	}
	return pats
}
