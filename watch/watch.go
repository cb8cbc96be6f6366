package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults for Options.
const (
	DefaultQuiet = 200 * time.Millisecond
	DefaultShort = 50 * time.Millisecond
	DefaultMax   = 10 * time.Second
)

// ErrInotifyLimit is returned (wrapped) when the kernel refuses another
// inotify watch or instance, or dropped events; the message says which sysctl
// to raise.
var ErrInotifyLimit = errors.New("inotify limit reached")

// Spec is one service's sources.
type Spec struct {
	// Service names the service in Batch.Services; must be unique and not empty.
	Service string
	// Root is the service's build context, an absolute path to a directory.
	Root string
	// Watch lists patterns relative to Root (.dockerignore syntax, "**"
	// allowed) of the paths that matter; empty means everything. When Watch
	// is set the root's .dockerignore is not applied, because sources built on
	// the host (a prebuild step) are often not part of the Docker context.
	Watch []string
	// Ignore lists patterns relative to Root to leave out, on top of the
	// root's .gitignore (and .dockerignore), editor temp files and .git.
	Ignore []string
}

// Options tune a Watcher. The zero value is fine.
type Options struct {
	// Files are single files (such as devenv.yaml) whose changes set
	// Batch.Config. Relative paths are taken from the current directory.
	Files []string
	// Quiet is how long no new change must arrive before a batch is sent
	// (DefaultQuiet when zero).
	Quiet time.Duration
	// Short is the quiet period instead of Quiet while a batch holds at
	// most 4 paths and no config change or overflow: an editor's save
	// (the file, perhaps a backup, a temporary file or a lock file) is
	// sent sooner, a checkout or a generator's burst still waits Quiet
	// from its last change. DefaultShort when zero; negative: Quiet
	// always.
	Short time.Duration
	// Max caps how long changes are held back (DefaultMax when zero).
	Max time.Duration
	// Clock replaces the real clock, for tests.
	Clock Clock
}

// Batch is one coalesced set of changes.
type Batch struct {
	// Services maps a service to the changed paths, slash-separated,
	// relative to its root, sorted. A service is present only if something
	// it watches changed (or on overflow, with no paths).
	Services map[string][]string
	// Config is set when one of Options.Files changed.
	Config bool
	// Overflow is set when the kernel dropped events: every service (and the
	// config) must be treated as changed.
	Overflow bool
	// First is when the watcher saw the batch's first change (by
	// Options.Clock): the time from it to the batch's end is what a save
	// costs, the quiet period included.
	First time.Time
}

type root struct {
	Spec
	rules *rules
}

// Watcher watches the sources of several services. Create it with New, read
// Events and Errors, and Close it.
type Watcher struct {
	fs      *fsnotify.Watcher
	roots   []*root
	files   map[string]bool
	watched map[string]bool // directories with an inotify watch; reader goroutine only after New
	changes chan change
	events  chan Batch
	errs    chan error
	done    chan struct{}
	clock   Clock
	once    sync.Once
	wg      sync.WaitGroup
}

// New validates the specs, puts a watch on every directory that matters and
// starts watching. Call Close when done.
func New(specs []Spec, opts Options) (*Watcher, error) {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.Max <= 0 {
		opts.Max = DefaultMax
	}
	if opts.Short == 0 {
		opts.Short = DefaultShort
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	w := &Watcher{
		files:   map[string]bool{},
		watched: map[string]bool{},
		changes: make(chan change, 256),
		events:  make(chan Batch),
		errs:    make(chan error, 64),
		done:    make(chan struct{}),
		clock:   opts.Clock,
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if s.Service == "" {
			return nil, fmt.Errorf("watch: a spec with root %q has no service name", s.Root)
		}
		if seen[s.Service] {
			return nil, fmt.Errorf("watch: service %q is listed twice", s.Service)
		}
		seen[s.Service] = true
		if !filepath.IsAbs(s.Root) {
			return nil, fmt.Errorf("watch: service %q: root %q must be an absolute path", s.Service, s.Root)
		}
		s.Root = filepath.Clean(s.Root)
		if fi, err := os.Stat(s.Root); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("watch: service %q: root %s is not a directory: create it or fix the service's context", s.Service, s.Root)
		}
		r, err := loadRules(s)
		if err != nil {
			return nil, fmt.Errorf("watch: service %q: %w", s.Service, err)
		}
		w.roots = append(w.roots, &root{Spec: s, rules: r})
	}
	var err error
	w.fs, err = fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		return nil, fmt.Errorf("watch: starting inotify: %w", limitError(err, ""))
	}
	for _, f := range opts.Files {
		abs, err := filepath.Abs(f)
		if err != nil {
			w.fs.Close()
			return nil, fmt.Errorf("watch: %s: %w", f, err)
		}
		w.files[abs] = true
		// Watch the folder, not the file: editors replace files by renaming.
		if err := w.add(filepath.Dir(abs)); err != nil {
			w.fs.Close()
			return nil, fmt.Errorf("watch: %s: %w", f, err)
		}
	}
	for _, r := range w.roots {
		if _, err := w.addTree(r.Root, false); err != nil {
			w.fs.Close()
			return nil, fmt.Errorf("watch: service %q: %w", r.Service, err)
		}
	}
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		w.read()
	}()
	go func() {
		defer w.wg.Done()
		coalesce(w.done, opts.Clock, opts.Quiet, opts.Short, opts.Max, w.changes, w.events)
	}()
	return w, nil
}

// Events returns the channel of coalesced batches. It is closed by Close.
func (w *Watcher) Events() <-chan Batch { return w.events }

// Errors returns the channel of errors met while watching (a new directory
// that cannot be watched, an inotify limit, dropped events). It is buffered;
// errors beyond its capacity are dropped when nobody reads it. Closed by Close.
func (w *Watcher) Errors() <-chan error { return w.errs }

// Close stops watching and waits for the watcher's goroutines to end.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.done)
		err = w.fs.Close()
		w.wg.Wait()
		close(w.events)
		close(w.errs)
	})
	return err
}

// WatchedDirs returns the directories under an inotify watch, for
// diagnostics and tests.
func (w *Watcher) WatchedDirs() []string {
	return w.fs.WatchList()
}

func (w *Watcher) read() {
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			w.handle(ev)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.fsError(err)
		}
	}
}

// fsError handles an error from fsnotify. An overflow means lost events: it
// is reported, and a batch naming every service (and the config) follows.
func (w *Watcher) fsError(err error) {
	if !errors.Is(err, fsnotify.ErrEventOverflow) {
		w.report(fmt.Errorf("watch: %w", err))
		return
	}
	w.report(fmt.Errorf("watch: the kernel dropped file events (%w: fs.inotify.max_queued_events): "+
		"rebuilding every service; to avoid it raise the limit with `sudo sysctl fs.inotify.max_queued_events=65536` "+
		"and keep it with `echo fs.inotify.max_queued_events=65536 | sudo tee /etc/sysctl.d/90-devenv-inotify.conf`: %w",
		ErrInotifyLimit, err))
	c := change{at: w.clock.Now(), service: map[string][]string{}, config: len(w.files) > 0, overflow: true}
	for _, r := range w.roots {
		c.service[r.Service] = nil
	}
	w.send(c)
}

func (w *Watcher) handle(ev fsnotify.Event) {
	if ev.Op == fsnotify.Chmod {
		return // metadata only: nothing to rebuild
	}
	abs := filepath.Clean(ev.Name)
	c := w.route(abs)
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if w.watched[abs] {
			delete(w.watched, abs)
			_ = w.fs.Remove(abs) // usually gone already
		}
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(abs); err == nil && fi.IsDir() {
			found, err := w.addTree(abs, true)
			if err != nil {
				w.report(fmt.Errorf("watch: %w", err))
			}
			mergeInto(&c, found)
		}
	}
	for _, r := range w.roots {
		if base := filepath.Base(abs); (base == ".gitignore" || base == ".dockerignore") && filepath.Dir(abs) == r.Root {
			rules, err := loadRules(r.Spec)
			if err != nil {
				w.report(fmt.Errorf("watch: service %q: %w", r.Service, err))
				continue
			}
			r.rules = rules
			if _, err := w.addTree(r.Root, false); err != nil {
				w.report(fmt.Errorf("watch: %w", err))
			}
		}
	}
	if len(c.service) > 0 || c.config {
		c.at = w.clock.Now()
		w.send(c)
	}
}

func mergeInto(c *change, paths map[string][]string) {
	for svc, p := range paths {
		if c.service == nil {
			c.service = map[string][]string{}
		}
		c.service[svc] = append(c.service[svc], p...)
	}
}

// route maps an absolute path to the services (and config) it concerns.
func (w *Watcher) route(abs string) change {
	c := change{config: w.files[abs]}
	for _, r := range w.roots {
		rel, ok := relUnder(r.Root, abs)
		if !ok || rel == "." || !r.rules.wanted(rel) {
			continue
		}
		if c.service == nil {
			c.service = map[string][]string{}
		}
		c.service[r.Service] = append(c.service[r.Service], rel)
	}
	return c
}

func (w *Watcher) send(c change) {
	select {
	case w.changes <- c:
	case <-w.done:
	}
}

func (w *Watcher) report(err error) {
	select {
	case w.errs <- err:
	default:
	}
}

// wantDir reports whether some root needs a watch on directory abs.
func (w *Watcher) wantDir(abs string) bool {
	for _, r := range w.roots {
		if rel, ok := relUnder(r.Root, abs); ok && !r.rules.skipDir(rel) {
			return true
		}
	}
	return false
}

// addTree watches dir and every directory below it that a root needs. With
// report set it also returns the files found, routed to services: they were
// created before their directory was watched and would be lost otherwise.
func (w *Watcher) addTree(dir string, report bool) (map[string][]string, error) {
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if d.IsDir() {
			if !w.wantDir(p) {
				return filepath.SkipDir
			}
			if err := w.add(p); err != nil {
				return err
			}
		}
		if report && p != dir {
			for svc, rels := range w.route(p).service {
				found[svc] = append(found[svc], rels...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", dir, err)
	}
	return found, nil
}

func (w *Watcher) add(dir string) error {
	if w.watched[dir] {
		return nil
	}
	if err := w.fs.Add(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return limitError(err, dir)
	}
	w.watched[dir] = true
	return nil
}

// limitError explains ENOSPC and EMFILE from inotify; other errors pass through.
func limitError(err error, dir string) error {
	var sysctl, value, what string
	switch {
	case errors.Is(err, syscall.ENOSPC):
		sysctl, value, what = "fs.inotify.max_user_watches", "524288", "the number of watched directories"
	case errors.Is(err, syscall.EMFILE):
		sysctl, value, what = "fs.inotify.max_user_instances", "1024", "the number of inotify instances"
	default:
		return err
	}
	where := ""
	if dir != "" {
		where = " while watching " + dir
	}
	return fmt.Errorf("%w%s: %s is at the kernel's limit (%s): raise it with `sudo sysctl %s=%s` "+
		"and keep it across reboots with `echo %s=%s | sudo tee /etc/sysctl.d/90-devenv-inotify.conf`, "+
		"or ignore large folders (.dockerignore, .gitignore, ignore:): %w",
		ErrInotifyLimit, where, what, sysctl, sysctl, value, sysctl, value, err)
}

// relUnder returns abs relative to root, slash-separated, if it lies inside.
func relUnder(root, abs string) (string, bool) {
	if abs == root {
		return ".", true
	}
	if !strings.HasPrefix(abs, root+string(filepath.Separator)) && root != string(filepath.Separator) {
		return "", false
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return "", false
	}
	return filepath.ToSlash(rel), true
}
