package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// ErrNoImage is returned (wrapped) when an image is neither present, nor
// pullable, nor replaceable by a built stand-in.
var ErrNoImage = errors.New("image not available")

// DefaultPullTimeout bounds one pull attempt. On a machine without a
// registry a pull fails fast or hangs on the network; either way it must not
// hold devenv up for long.
const DefaultPullTimeout = 15 * time.Second

// DefaultRetryPull is how long a Resolver with RememberIn uses a stand-in
// before it tries the registry again.
const DefaultRetryPull = time.Hour

// Resolved is the image to use for a reference.
type Resolved struct {
	Ref     string // the image to use: the reference itself or a stand-in
	StandIn bool   // Ref is a stand-in for the requested reference
	Note    string // one line for the user when a stand-in is used
}

// Resolver applies the stand-in rule. It remembers, for as long as it lives,
// which references could not be pulled, so keep one per process.
type Resolver struct {
	Docker *client.Client
	Log    *log.Logger
	// PullTimeout bounds each pull attempt; zero means DefaultPullTimeout.
	PullTimeout time.Duration
	// StandIns is the catalogue; nil means All().
	StandIns []standin.StandIn
	// RememberIn, when set, is a folder where the Resolver notes each
	// reference that could not be pulled and was replaced by a stand-in,
	// so that later processes use the stand-in without trying the
	// registry again for RetryPull (an offline machine would otherwise pay
	// a failed pull, up to PullTimeout, on every run).
	RememberIn string
	// RetryPull is how long a remembered failure stands; zero means
	// DefaultRetryPull.
	RetryPull time.Duration
	// NoPull makes Resolve look only at what Docker has: the reference when
	// present, else a present stand-in; the registry is never tried (a
	// bundle holds what this machine uses, not what it could pull).
	NoPull bool

	mu       sync.Mutex
	cantPull map[string]error
}

// NewResolver returns a Resolver using All() and DefaultPullTimeout.
func NewResolver(cli *client.Client, lg *log.Logger) *Resolver {
	return &Resolver{Docker: cli, Log: lg}
}

// Resolve applies the stand-in rule once, with a Resolver of its own. Callers
// resolving several references should keep one Resolver instead, so an
// unpullable reference is tried only once.
func Resolve(ctx context.Context, cli *client.Client, ref string, lg *log.Logger) (Resolved, error) {
	return NewResolver(cli, lg).Resolve(ctx, ref)
}

// Resolve returns the image to use for ref: ref itself when it is present or
// can be pulled, else a stand-in that is present (logging one line), else an
// error wrapping ErrNoImage that says how to build one.
func (r *Resolver) Resolve(ctx context.Context, ref string) (Resolved, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Resolved{}, fmt.Errorf("%w: empty image reference", ErrNoImage)
	}
	present, err := r.present(ctx, ref)
	if err != nil {
		return Resolved{}, err
	}
	if present {
		return Resolved{Ref: ref}, nil
	}
	if r.NoPull {
		return r.localStandIn(ctx, ref)
	}
	if s, ok, err := r.loadedStandIn(ctx, ref); err != nil || ok {
		return s, err
	}
	pullErr := r.pull(ctx, ref)
	if pullErr == nil {
		return Resolved{Ref: ref}, nil
	}
	if ctx.Err() != nil {
		return Resolved{}, ctx.Err()
	}
	r.log().Debugf("pulling %s failed: %v", ref, pullErr)

	s, ok, err := r.findStandIn(ctx, ref)
	if err != nil {
		return Resolved{}, err
	}
	if ok {
		r.rememberFailure(ref)
		note := fmt.Sprintf("%s cannot be pulled; using stand-in %s", ref, s)
		r.log().Infof("%s", note)
		return Resolved{Ref: s, StandIn: true, Note: note}, nil
	}
	if name := r.standInName(ref); name != "" {
		return Resolved{}, fmt.Errorf("%w: %s is not present and cannot be pulled (%v); build its stand-in with `devenv images build %s`", ErrNoImage, ref, pullErr, name)
	}
	return Resolved{}, fmt.Errorf("%w: %s is not present and cannot be pulled (%v), and devenv has no stand-in for it; load it with `docker load` or `devenv images load FILE`, or use an image devenv can stand in for (see `devenv images list`, build with `devenv images build`)", ErrNoImage, ref, pullErr)
}

// localStandIn is Resolve without the registry (NoPull).
func (r *Resolver) localStandIn(ctx context.Context, ref string) (Resolved, error) {
	s, ok, err := r.findStandIn(ctx, ref)
	if err != nil {
		return Resolved{}, err
	}
	if ok {
		note := fmt.Sprintf("%s is not present; using stand-in %s", ref, s)
		r.log().Debugf("%s", note)
		return Resolved{Ref: s, StandIn: true, Note: note}, nil
	}
	for _, s := range r.catalogue() {
		if s.Ref == ref {
			return Resolved{}, fmt.Errorf("%w: %s is not present: build it with `devenv images build %s`", ErrNoImage, ref, s.Name)
		}
	}
	if name := r.standInName(ref); name != "" {
		return Resolved{}, fmt.Errorf("%w: %s is not present: pull it (`docker pull %s`) or build its stand-in (`devenv images build %s`)", ErrNoImage, ref, ref, name)
	}
	if repo, _ := standin.SplitRef(ref); strings.HasPrefix(repo, standin.Registry+"/") {
		return Resolved{}, fmt.Errorf("%w: %s is not present: %s images are built locally, never pulled; load it (`devenv images load FILE`)", ErrNoImage, ref, standin.Registry)
	}
	return Resolved{}, fmt.Errorf("%w: %s is not present: pull it (`docker pull %s`) or load it (`devenv images load FILE`)", ErrNoImage, ref, ref)
}

// loadedStandIn returns, without trying the registry, the stand-in for ref
// when `devenv images load` loaded it from a bundle (see NoteLoaded) and it
// is present: the room uses what the instructor's machine used, and a
// failed or slow pull on the room's network is not paid.
func (r *Resolver) loadedStandIn(ctx context.Context, ref string) (Resolved, bool, error) {
	if r.RememberIn == "" {
		return Resolved{}, false, nil
	}
	for _, s := range r.catalogue() {
		if !standsInFor(s, ref) || !r.loadedNoted(s) {
			continue
		}
		ok, err := r.present(ctx, s.Ref)
		if err != nil {
			return Resolved{}, false, err
		}
		if ok {
			note := fmt.Sprintf("%s is not present; using stand-in %s, loaded from a bundle (delete %s to try the registry)", ref, s.Ref, r.RememberIn)
			r.log().Infof("%s", note)
			return Resolved{Ref: s.Ref, StandIn: true, Note: note}, true, nil
		}
	}
	return Resolved{}, false, nil
}

// loadedName is the file in dir that notes that stand-in s was loaded from
// a bundle.
func loadedName(dir string, s standin.StandIn) string {
	return filepath.Join(dir, "loaded-"+s.Name)
}

func (r *Resolver) loadedNoted(s standin.StandIn) bool {
	b, err := os.ReadFile(loadedName(r.RememberIn, s))
	return err == nil && strings.TrimSpace(string(b)) == s.Ref
}

// NoteLoaded notes in dir (a Resolver's RememberIn) every catalogue
// stand-in among refs, images just loaded from a bundle: a Resolver with
// that RememberIn then uses them for the images they replace without trying
// the registry first, as long as the real image is not present. The notes
// do not expire; deleting dir removes them. It returns the names noted.
func NoteLoaded(dir string, refs []string) ([]string, error) {
	var noted []string
	for _, s := range All() {
		if !slices.Contains(refs, s.Ref) {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return noted, fmt.Errorf("noting the loaded stand-ins: %w", err)
		}
		if err := os.WriteFile(loadedName(dir, s), []byte(s.Ref+"\n"), 0o600); err != nil {
			return noted, fmt.Errorf("noting the loaded stand-ins: %w", err)
		}
		noted = append(noted, s.Name)
	}
	return noted, nil
}

// RememberDir is the RememberIn folder devenv's commands share:
// pull-failed/ in devenv's cache folder.
func RememberDir() (string, error) {
	cache, err := dirs.Cache()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "pull-failed"), nil
}

// Func returns Resolve as a plain function of a reference, for RewriteDockerfile.
func (r *Resolver) Func(ctx context.Context) func(ref string) (string, error) {
	return func(ref string) (string, error) {
		res, err := r.Resolve(ctx, ref)
		return res.Ref, err
	}
}

func (r *Resolver) log() *log.Logger {
	if r.Log == nil {
		return log.Nop()
	}
	return r.Log
}

func (r *Resolver) catalogue() []standin.StandIn {
	if r.StandIns != nil {
		return r.StandIns
	}
	return All()
}

func (r *Resolver) present(ctx context.Context, ref string) (bool, error) {
	_, err := r.Docker.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("inspecting %s: %w", ref, err)
	}
}

// pull tries once per Resolver to pull ref, bounded by PullTimeout.
func (r *Resolver) pull(ctx context.Context, ref string) error {
	r.mu.Lock()
	if err, ok := r.cantPull[ref]; ok {
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()

	var err error
	if until, ok := r.remembered(ref); ok {
		err = fmt.Errorf("a pull failed recently; not trying again before %s (noted in %s)", until.Format(time.TimeOnly), r.RememberIn)
		r.log().Debugf("%s: %v", ref, err)
	} else if repo, _ := standin.SplitRef(ref); strings.HasPrefix(repo, standin.Registry+"/") {
		err = fmt.Errorf("%s images are built locally, never pulled", standin.Registry)
	} else {
		timeout := r.PullTimeout
		if timeout == 0 {
			timeout = DefaultPullTimeout
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		r.log().Debugf("trying to pull %s (up to %s)", ref, timeout)
		var res client.ImagePullResponse
		res, err = r.Docker.ImagePull(pctx, ref, client.ImagePullOptions{})
		if err == nil {
			err = res.Wait(pctx)
			_ = res.Close()
		}
		if err != nil && pctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no answer from the registry within %s", timeout)
		}
		if err == nil {
			// A pull that "succeeds" without producing the image is still a failure.
			if ok, perr := r.present(ctx, ref); perr != nil || !ok {
				err = fmt.Errorf("pull finished but %s is not present", ref)
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		r.mu.Lock()
		if r.cantPull == nil {
			r.cantPull = map[string]error{}
		}
		r.cantPull[ref] = err
		r.mu.Unlock()
	}
	return err
}

// standInName returns the name of the catalogue stand-in that replaces ref, if any.
func (r *Resolver) standInName(ref string) string {
	for _, s := range r.catalogue() {
		if standsInFor(s, ref) {
			return s.Name
		}
	}
	return ""
}

// findStandIn returns a present stand-in image for ref: first the catalogue's
// (by Matches or For), then any image labelled as standing in for ref's repository.
func (r *Resolver) findStandIn(ctx context.Context, ref string) (string, bool, error) {
	for _, s := range r.catalogue() {
		if !standsInFor(s, ref) {
			continue
		}
		ok, err := r.present(ctx, s.Ref)
		if err != nil {
			return "", false, err
		}
		if ok {
			return s.Ref, true, nil
		}
	}
	repo, _ := standin.SplitRef(ref)
	// Stand-ins built before the label rename carry the dev.devenv.* spelling.
	for _, key := range []string{standin.LabelFor, project.LegacyLabel(standin.LabelFor)} {
		list, err := r.Docker.ImageList(ctx, client.ImageListOptions{
			Filters: client.Filters{}.Add("label", key+"="+repo),
		})
		if err != nil {
			return "", false, fmt.Errorf("listing stand-in images for %s: %w", repo, err)
		}
		for _, img := range list.Items {
			for _, tag := range img.RepoTags {
				if strings.HasPrefix(tag, standin.Registry+"/") {
					return tag, true, nil
				}
			}
		}
	}
	return "", false, nil
}

// standsInFor reports whether stand-in s replaces ref.
func standsInFor(s standin.StandIn, ref string) bool {
	if s.Matches != nil {
		return s.Matches(ref)
	}
	if s.For == "" {
		return false
	}
	repo, _ := standin.SplitRef(ref)
	return repo == s.For
}

// rememberedName is the file in RememberIn that notes ref's failed pull.
func (r *Resolver) rememberedName(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(r.RememberIn, hex.EncodeToString(sum[:8]))
}

// rememberFailure notes that ref could not be pulled (see RememberIn).
func (r *Resolver) rememberFailure(ref string) {
	if r.RememberIn == "" {
		return
	}
	if err := os.MkdirAll(r.RememberIn, 0o700); err != nil {
		r.log().Debugf("noting the failed pull of %s: %v", ref, err)
		return
	}
	if err := os.WriteFile(r.rememberedName(ref), []byte(ref+"\n"), 0o600); err != nil {
		r.log().Debugf("noting the failed pull of %s: %v", ref, err)
	}
}

// remembered reports whether a failed pull of ref was noted less than
// RetryPull ago, and until when that stands.
func (r *Resolver) remembered(ref string) (time.Time, bool) {
	if r.RememberIn == "" {
		return time.Time{}, false
	}
	path := r.rememberedName(ref)
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != ref {
		return time.Time{}, false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, false
	}
	retry := r.RetryPull
	if retry == 0 {
		retry = DefaultRetryPull
	}
	until := fi.ModTime().Add(retry)
	return until, time.Now().Before(until)
}
