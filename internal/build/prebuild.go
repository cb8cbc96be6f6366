package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/patternmatcher"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/execx"
	"github.com/devenv-tool/devenv/internal/log"
)

// State remembers, per service, the inputs of the last successful prebuild.
// It lives in one small JSON file; see StateDir for where.
type State struct {
	mu   sync.Mutex
	path string
	// contexts are the services' build contexts as their last builds saw
	// them (see ImageOptions.Changed), in memory only.
	contexts map[string]*contextCache
	chunkMin int // 0: chunkMin (see contextCache)
	// Prebuild maps a service to the hash of its prebuild command and input
	// files after the last successful run.
	Prebuild map[string]string `json:"prebuild"`
	// Images maps a service to its last assembled image and the
	// fingerprint of that image's inputs (see ImageOptions.State).
	Images map[string]ImageMemo `json:"images,omitempty"`
	// walks are prebuild checks' walks of the contexts, for the image
	// builds that follow them (see contextWalk), in memory only.
	walks map[string]*contextWalk

	folders folderCache // base images' folders (see State.baseFolders)

	// inDocker are the layer chains this process loaded into Docker (see
	// Assembled.loadIntoDocker), in memory only; partialRefused counts the
	// archives that left some out which the engine refused, when a whole
	// one then loaded.
	inDocker       map[string]bool
	partialRefused int
	leftOut        int // layers left out of archives (for tests)
}

// dockerHas reports whether this process loaded layer chain id into
// Docker, and the engine takes archives without such layers.
func (s *State) dockerHas(id string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.partialRefused < 2 && s.inDocker[id]
}

// loadWhole notes that the engine refused an archive that left out layers
// it had, and took the whole one: an image removed meanwhile, once; twice,
// the engine wants every layer in its archives (one with the containerd
// image store may), and gets them from then on.
func (s *State) loadWhole() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partialRefused++
}

// noteLeftOut counts n layers left out of an archive (for tests).
func (s *State) noteLeftOut(n int) {
	if s == nil || n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leftOut += n
}

// setDockerHas notes (has) or forgets the layer chains ids in Docker.
func (s *State) setDockerHas(ids []string, has bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inDocker == nil {
		s.inDocker = map[string]bool{}
	}
	for _, id := range ids {
		if has {
			s.inDocker[id] = true
		} else {
			delete(s.inDocker, id)
		}
	}
}

// stateFile is the file name inside the state folder.
const stateFile = "build-state.json"

// StateDir returns where a project's build state is kept: a folder named
// after the project folder and a hash of its path, in devenv's state folder
// ($DEVENV_STATE, else $XDG_STATE_HOME/devenv, else ~/.local/state/devenv;
// see internal/dirs), which it creates when missing. Not a .devenv/ folder
// inside the project, so that writing the state never wakes the file
// watcher and never shows up in `git status`.
func StateDir(projectDir string) (string, error) {
	abs, err := filepath.Abs(projectDir)
	if err != nil {
		return "", fmt.Errorf("finding the state folder: %w", err)
	}
	state, err := dirs.State()
	if err != nil {
		return "", fmt.Errorf("finding the state folder: %w", err)
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(state, "projects", filepath.Base(abs)+"-"+hex.EncodeToString(sum[:4])), nil
}

// LoadState reads the state kept in dir; a missing file gives an empty state.
func LoadState(dir string) (*State, error) {
	s := &State{path: filepath.Join(dir, stateFile), Prebuild: map[string]string{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading build state: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		// A damaged cache is not the user's problem: start over.
		return &State{path: s.path, Prebuild: map[string]string{}}, nil
	}
	if s.Prebuild == nil {
		s.Prebuild = map[string]string{}
	}
	return s, nil
}

func (s *State) get(service string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Prebuild[service]
}

// set records a service's hash and writes the file (atomically).
func (s *State) set(service, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Prebuild[service] = hash
	return s.writeLocked()
}

// write writes the file (atomically).
func (s *State) write() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked()
}

func (s *State) writeLocked() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("writing build state: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing build state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("writing build state: %w", err)
	}
	return nil
}

// Prebuild runs the service's prebuild command in its context folder, unless
// the command and its input files (Watch minus Ignore, compared by path, size,
// mode and modification time) are unchanged since the last success recorded
// in state. With a verbose logger the output streams as it comes, each line
// prefixed with "[service] "; on failure it is always shown. ran reports
// whether the command ran. A nil state means always run.
func Prebuild(ctx context.Context, spec Spec, lg *log.Logger, state *State) (ran bool, err error) {
	if len(spec.Prebuild) == 0 {
		return false, nil
	}
	if err := spec.checkContext(); err != nil {
		return false, err
	}
	if lg == nil {
		lg = log.Nop()
	}
	cmdline := strings.Join(spec.Prebuild, " ")
	var before string
	var walked *contextWalk
	if state != nil {
		before, walked, err = inputsHashAndWalk(spec)
	} else {
		before, err = inputsHash(spec)
	}
	if err != nil {
		return false, err
	}
	if state != nil && state.get(spec.Service) == before {
		lg.Debugf("[%s] prebuild skipped: %s and its inputs are unchanged", spec.Service, cmdline)
		if walked != nil {
			// The image build that follows scans the context: this walk
			// saw it already.
			state.keepWalk(spec.Service, walked)
		}
		return false, nil
	}
	lg.Infof("[%s] prebuild: %s", spec.Service, cmdline)
	pw := log.NewPrefixWriter(lg.Writer(), "["+spec.Service+"] ")
	c := execx.Cmd{Args: spec.Prebuild, Dir: spec.Context}
	if lg.Verbose() {
		c.Stream = pw
	}
	out, err := execx.Output(ctx, c)
	if err != nil {
		if !lg.Verbose() {
			_, _ = pw.Write(out)
		}
		pw.Flush()
		cause := err
		var re *execx.RunError
		if errors.As(err, &re) {
			cause = re.Err // the output was shown above
		}
		return true, fmt.Errorf("service %q: prebuild `%s` in %s failed: %w", spec.Service, cmdline, spec.Context, cause)
	}
	pw.Flush()
	if state != nil {
		// Hash again: the command's own outputs (target/*.jar) are inputs of
		// the next comparison, so deleting them reruns the command.
		after, err := inputsHash(spec)
		if err != nil {
			return true, err
		}
		if err := state.set(spec.Service, after); err != nil {
			return true, fmt.Errorf("service %q: %w", spec.Service, err)
		}
	}
	return true, nil
}

// inputsHash hashes the prebuild command and the path, size, mode and
// modification time of every input file. Metadata rather than contents: on a
// tree of 2,000 files and 50 MB it took 31 ms against 606 ms for packing and
// hashing the contents (BenchmarkInputsHash, 2 cores), and tools that rewrite
// a file give it a new mtime. A touched but unchanged file costs one rerun.
func inputsHash(spec Spec) (string, error) {
	filter, err := inputsFilter(spec)
	if err != nil {
		return "", fmt.Errorf("service %q: hashing prebuild inputs: %w", spec.Service, err)
	}
	ents, err := walkTree(spec.Context, 0, filter)
	if err != nil {
		return "", fmt.Errorf("service %q: hashing prebuild inputs: %w", spec.Service, err)
	}
	return hashInputs(spec, ents), nil
}

// inputsHashAndWalk is inputsHash, with the walk of the build context
// (what a full scan of contextCache walks) made in the same walk: walked
// is nil when the context cannot be walked as the image build would
// (then only the inputs are).
func inputsHashAndWalk(spec Spec) (hash string, walked *contextWalk, err error) {
	filter, err := inputsFilter(spec)
	if err != nil {
		return "", nil, fmt.Errorf("service %q: hashing prebuild inputs: %w", spec.Service, err)
	}
	ignore, err := os.ReadFile(filepath.Join(spec.Context, ".dockerignore"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		h, err := inputsHash(spec)
		return h, nil, err
	}
	pm, err := dockerignore(spec.Context)
	if err != nil {
		h, err := inputsHash(spec)
		return h, nil, err
	}
	w := &contextWalk{dir: spec.Context, dfName: dockerfileName(spec), ignore: string(ignore), at: time.Now()}
	both, err := walkTrees(spec.Context, 0, filter, contextFilter(w.dfName, pm))
	if err != nil {
		// Perhaps only the context's walk failed: the inputs' error,
		// if any, is the one to report.
		h, err := inputsHash(spec)
		return h, nil, err
	}
	w.ents = both[1]
	return hashInputs(spec, both[0]), w, nil
}

// hashInputs is inputsHash of the inputs ents.
func hashInputs(spec Spec, ents []treeEntry) string {
	h := sha256.New()
	fmt.Fprintf(h, "cmd %q\n", spec.Prebuild)
	var line []byte
	for _, e := range ents {
		// "%s %d %o %d\n": path, size, mode, modification time.
		line = append(line[:0], e.rel...)
		line = append(line, ' ')
		line = strconv.AppendInt(line, e.size, 10)
		line = append(line, ' ')
		line = strconv.AppendUint(line, uint64(e.mode), 8)
		line = append(line, ' ')
		line = strconv.AppendInt(line, e.mtime.UnixNano(), 10)
		h.Write(append(line, '\n'))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// walkInputs calls fn for every file under the context that Watch selects and
// Ignore does not exclude, in lexical order, with its lstat (see walkTree).
// .git is always left out.
func walkInputs(spec Spec, fn func(e treeEntry) error) error {
	filter, err := inputsFilter(spec)
	if err != nil {
		return err
	}
	ents, err := walkTree(spec.Context, 0, filter)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// inputsFilter is walkInputs' choice of paths as a treeFilter.
func inputsFilter(spec Spec) (treeFilter, error) {
	var watch, ignore *patternmatcher.PatternMatcher
	var err error
	if len(spec.Watch) > 0 {
		if watch, err = patternmatcher.New(spec.Watch); err != nil {
			return nil, fmt.Errorf("watch patterns %q: %w", spec.Watch, err)
		}
	}
	if len(spec.Ignore) > 0 {
		if ignore, err = patternmatcher.New(spec.Ignore); err != nil {
			return nil, fmt.Errorf("ignore patterns %q: %w", spec.Ignore, err)
		}
	}
	return func(rels []string, dirs, keep, descend []bool) error {
		for i, rel := range rels {
			if dirs[i] && path.Base(rel) == ".git" {
				descend[i] = false
				continue
			}
			if ignore != nil {
				if m, _ := ignore.MatchesOrParentMatches(rel); m {
					descend[i] = dirs[i] && ignore.Exclusions()
					continue
				}
			}
			if dirs[i] {
				continue // looked into, not reported
			}
			if watch != nil {
				if m, _ := watch.MatchesOrParentMatches(rel); !m {
					continue
				}
			}
			keep[i] = true
		}
		return nil
	}, nil
}

// PrebuildCurrent reports whether Prebuild would skip the command: the
// command and its inputs are unchanged since the last success recorded in
// state (compared as Prebuild compares them). A nil state, or a service
// without a prebuild, gives false and true.
func PrebuildCurrent(spec Spec, state *State) (bool, error) {
	if len(spec.Prebuild) == 0 {
		return true, nil
	}
	if state == nil {
		return false, nil
	}
	h, err := inputsHash(spec)
	if err != nil {
		return false, err
	}
	return state.get(spec.Service) == h, nil
}

// SourcesHash hashes what a service's image is made from on the host, by
// content: the prebuild command, the Dockerfile, the build args as
// devenv.yaml gives them, and the path and bytes of every prebuild input
// file (Watch minus Ignore; a symbolic link by its target). Modification
// times and modes are left out, so a clone or a copy of the same sources
// gives the same hash. It reads every input file (about 20 times slower
// than the metadata Prebuild compares): bundle records it, and up computes
// it only where the prebuild's toolchain is missing.
func SourcesHash(spec Spec) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "cmd %q\n", spec.Prebuild)
	df, err := os.ReadFile(spec.dockerfile())
	if err != nil {
		return "", fmt.Errorf("service %q: hashing the sources: %w", spec.Service, err)
	}
	fmt.Fprintf(h, "dockerfile %d\n", len(df))
	h.Write(df)
	for _, k := range slices.Sorted(maps.Keys(spec.Args)) {
		fmt.Fprintf(h, "arg %q=%q\n", k, spec.Args[k])
	}
	err = walkInputs(spec, func(e treeEntry) error {
		rel := e.rel
		p := filepath.Join(spec.Context, filepath.FromSlash(rel))
		switch {
		case e.mode&fs.ModeSymlink != 0:
			fmt.Fprintf(h, "link %q %q\n", rel, e.link)
		case e.mode.IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fmt.Fprintf(h, "file %q %d\n", rel, e.size)
			if _, err := io.CopyN(h, f, e.size); err != nil {
				return fmt.Errorf("reading %s: %w", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("service %q: hashing the sources: %w", spec.Service, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// shells run what their arguments name: a prebuild started with one is a
// script, whose toolchain Toolchain looks for in the script.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "env": true}

// scriptLimit is the largest prebuild script Toolchain reads.
const scriptLimit = 256 << 10

// Toolchain returns the program a service's prebuild cannot run without,
// so that a machine without it can be told so: the command's program when
// it is named bare (["go", "build", "."] needs go); for a script
// (["./build.sh"], ["sh", "-c", "./build.sh"]) the toolchain the command
// line or the script names: go when the context holds a go.mod, else javac.
// "" when none is known (the prebuild then runs as always).
func Toolchain(spec Spec) string {
	if len(spec.Prebuild) == 0 {
		return ""
	}
	prog := spec.Prebuild[0]
	if !strings.Contains(prog, "/") && !shells[prog] {
		return prog
	}
	text := strings.Join(spec.Prebuild, " ")
	for _, a := range spec.Prebuild {
		for _, f := range strings.Fields(a) { // sh -c "./build.sh --fast"
			p := f
			if !filepath.IsAbs(p) {
				p = filepath.Join(spec.Context, p)
			}
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() || fi.Size() > scriptLimit {
				continue
			}
			if b, err := os.ReadFile(p); err == nil {
				text += "\n" + string(b)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(spec.Context, "go.mod")); err == nil && namesWord(text, "go") {
		return "go"
	}
	if namesWord(text, "javac") {
		return "javac"
	}
	return ""
}

// namesWord reports whether text holds word as a command would: not as
// part of a longer name, a path or a file name (go.mod, ./go, go-x).
func namesWord(text, word string) bool {
	inName := func(r byte) bool {
		return r == '_' || r == '.' || r == '/' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(text[i:], word)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(word)
		if (j == 0 || !inName(text[j-1])) && (end == len(text) || !inName(text[end])) {
			return true
		}
		i = j + 1
	}
}
