package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/termx"
	"github.com/devenv-tool/devenv/project"
)

// CacheEnv names the environment variable that overrides devenv's cache folder.
const CacheEnv = dirs.CacheEnv

// BuildOptions control Build.
type BuildOptions struct {
	// Only names the stand-ins to build (with whatever they need); empty means all.
	Only []string
	// Force rebuilds the stand-ins named in Only (all of them when Only is
	// empty) even when their image is up to date.
	Force bool
	// CacheDir keeps sources and binaries between builds; empty means
	// devenv's cache folder (DefaultCacheDir).
	CacheDir string
	// Log receives warnings and debug lines; nil means silent.
	Log *log.Logger
	// Out receives progress: a status line on a terminal, plain lines otherwise.
	// Nil means no progress.
	Out io.Writer
	// Verbose streams the output of every build step to Out.
	Verbose bool
	// StandIns is the catalogue to build from; nil means All().
	StandIns []standin.StandIn
}

// MissingPrereqsError is returned when host tools needed by a build are missing.
type MissingPrereqsError struct {
	Missing []standin.Prereq
	For     []string // stand-ins that need them
}

func (e *MissingPrereqsError) Error() string {
	var cmds, pkgs []string
	goMissing := false
	for _, p := range e.Missing {
		cmds = append(cmds, p.Command)
		switch {
		case p.Command == "go" || p.Package == "golang" || p.Package == "golang-go":
			goMissing = true
		case p.Package != "":
			if !slices.Contains(pkgs, p.Package) {
				pkgs = append(pkgs, p.Package)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "building %s needs tools that are not installed: %s", strings.Join(e.For, ", "), strings.Join(cmds, ", "))
	if len(pkgs) > 0 {
		fmt.Fprintf(&b, "\ninstall them with:\n  apt-get install -y %s", strings.Join(pkgs, " "))
	}
	if goMissing {
		b.WriteString("\ninstall a Go toolchain (go 1.24 or newer) from https://go.dev/dl and put its bin folder on PATH")
	}
	return b.String()
}

// Build builds the selected stand-ins that are missing or out of date, in
// dependency order, skipping those whose image already carries the current
// recipe hash. It checks the host tools of everything it will build before
// building anything.
func Build(ctx context.Context, cli *client.Client, opts BuildOptions) error {
	cat := opts.StandIns
	if cat == nil {
		cat = All()
	}
	lg := opts.Log
	if lg == nil {
		lg = log.Nop()
	}
	hashes, err := recipeHashes(cat)
	if err != nil {
		return err
	}
	selected, err := selectWithNeeds(cat, opts.Only)
	if err != nil {
		return err
	}

	type job struct {
		s       standin.StandIn
		hash    string
		current bool
	}
	var jobs []job
	var toBuild []standin.StandIn
	for _, s := range selected {
		h := hashes[s.Name]
		current, err := upToDate(ctx, cli, s.Ref, h)
		if err != nil {
			return err
		}
		if opts.Force && (len(opts.Only) == 0 || slices.Contains(opts.Only, s.Name)) {
			current = false
		}
		jobs = append(jobs, job{s: s, hash: h, current: current})
		if !current {
			toBuild = append(toBuild, s)
		}
	}
	if err := checkPrereqs(toBuild); err != nil {
		return err
	}

	cacheDir, err := resolveCacheDir(opts.CacheDir)
	if err != nil {
		return err
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	for _, j := range jobs {
		if j.current {
			fmt.Fprintf(out, "✓ %s up to date (%s)\n", j.s.Name, j.s.Ref)
			continue
		}
		p := newProgress(out, termx.IsTerminal(out) && !opts.Verbose, j.s.Name)
		env := &standin.Env{Docker: cli, Log: lg, CacheDir: cacheDir, Step: p.step}
		if opts.Verbose {
			env.Output = out
		}
		p.begin()
		err := j.s.Build(ctx, env, j.s.Labels(j.hash))
		if err == nil {
			err = checkBuilt(ctx, cli, j.s, j.hash)
		}
		elapsed := p.end()
		if err != nil {
			fmt.Fprintf(out, "✗ %s failed after %s\n", j.s.Name, formatDuration(elapsed))
			return fmt.Errorf("building stand-in %s (%s): %w", j.s.Name, j.s.Ref, err)
		}
		fmt.Fprintf(out, "✓ %s built in %s (%s)\n", j.s.Name, formatDuration(elapsed), j.s.Ref)
	}
	return nil
}

// recipeHashes returns every stand-in's recipe hash. A stand-in's hash covers
// the hashes of what it Needs, so rebuilding a base for a new recipe rebuilds
// everything on top of it.
func recipeHashes(cat []standin.StandIn) (map[string]string, error) {
	hashes := make(map[string]string, len(cat))
	for _, s := range cat {
		if s.Recipe == nil || s.Build == nil {
			return nil, fmt.Errorf("stand-in %s has no recipe or build function", s.Name)
		}
		parts, err := s.Recipe()
		if err != nil {
			return nil, fmt.Errorf("computing the recipe of stand-in %s: %w", s.Name, err)
		}
		for _, n := range s.Needs {
			h, ok := hashes[n]
			if !ok {
				return nil, fmt.Errorf("stand-in %s needs %q, which is not listed before it", s.Name, n)
			}
			parts = append(parts, "needs "+n+"="+h)
		}
		hashes[s.Name] = standin.Hash(parts)
	}
	return hashes, nil
}

// selectWithNeeds returns the stand-ins named in only plus everything they
// need, in catalogue order; all of them when only is empty.
func selectWithNeeds(cat []standin.StandIn, only []string) ([]standin.StandIn, error) {
	if len(only) == 0 {
		return cat, nil
	}
	byName := make(map[string]standin.StandIn, len(cat))
	var names []string
	for _, s := range cat {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	want := map[string]bool{}
	var add func(n string) error
	add = func(n string) error {
		s, ok := byName[n]
		if !ok {
			return fmt.Errorf("unknown stand-in %q: choose from %s", n, strings.Join(names, ", "))
		}
		if want[n] {
			return nil
		}
		want[n] = true
		for _, need := range s.Needs {
			if err := add(need); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range only {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	var out []standin.StandIn
	for _, s := range cat {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// upToDate reports whether ref exists and carries the recipe hash.
func upToDate(ctx context.Context, cli *client.Client, ref, hash string) (bool, error) {
	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("inspecting %s: %w", ref, err)
	}
	return img.Config != nil && project.ImageLabel(img.Config.Labels, standin.LabelRecipe) == hash, nil
}

func checkBuilt(ctx context.Context, cli *client.Client, s standin.StandIn, hash string) error {
	ok, err := upToDate(ctx, cli, s.Ref, hash)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the build finished but %s is missing or lacks label %s=%s", s.Ref, standin.LabelRecipe, hash)
	}
	return nil
}

func checkPrereqs(build []standin.StandIn) error {
	var missing []standin.Prereq
	var forNames []string
	seen := map[string]bool{}
	for _, s := range build {
		for _, p := range s.Prereqs {
			if prereqPresent(p) {
				continue
			}
			if !slices.Contains(forNames, s.Name) {
				forNames = append(forNames, s.Name)
			}
			if !seen[p.Command] {
				seen[p.Command] = true
				missing = append(missing, p)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.SliceStable(missing, func(i, j int) bool { return missing[i].Package < missing[j].Package })
	return &MissingPrereqsError{Missing: missing, For: forNames}
}

func prereqPresent(p standin.Prereq) bool {
	if filepath.IsAbs(p.Command) {
		_, err := os.Stat(p.Command)
		return err == nil
	}
	_, err := exec.LookPath(p.Command)
	return err == nil
}

// resolveCacheDir returns dir, created when missing, or DefaultCacheDir when empty.
func resolveCacheDir(dir string) (string, error) {
	if dir == "" {
		return DefaultCacheDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache folder %s: %w", dir, err)
	}
	return dir, nil
}

// DefaultCacheDir returns the cache folder Build uses when none is given:
// devenv's cache folder ($DEVENV_CACHE, else $XDG_CACHE_HOME/devenv, else
// ~/.cache/devenv; see internal/dirs), created when missing.
func DefaultCacheDir() (string, error) {
	return dirs.Cache()
}
