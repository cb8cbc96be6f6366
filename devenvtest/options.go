package devenvtest

import (
	"log/slog"
	"time"
)

// DefaultTimeout bounds Start when WithTimeout is not given: creating the
// environment, bringing it up to date, or waiting for another process to
// release it.
const DefaultTimeout = 10 * time.Minute

// Option changes how Start brings the environment up, in the style of
// testcontainers-go's functional options.
type Option func(*options)

type options struct {
	files      []string
	timeout    time.Duration
	log        *slog.Logger
	reuse      bool
	down       bool
	kubeconfig string
}

func newOptions(opts []Option) options {
	o := options{timeout: DefaultTimeout, reuse: true}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithFile names the configuration files, layered as `devenv up -f a -f b`
// layers them: later files override earlier ones. Relative names are
// relative to the test's working directory (the package's folder under go
// test). Without it, Start reads devenv.yaml in that folder.
func WithFile(files ...string) Option {
	return func(o *options) { o.files = append(o.files, files...) }
}

// WithTimeout bounds Start as a whole, including the wait for another
// process that holds the environment; the default is DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithLogger sends devenv's progress lines to l instead of the test's log
// (t.Logf, the default). A logger enabled for slog.LevelDebug gets devenv's
// debug lines too (what `devenv up -v` prints).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithReuse(false) removes the environment first (as `devenv down` does,
// waiting for other users to finish) and creates it anew. The default,
// true, reuses a current environment.
func WithReuse(reuse bool) Option {
	return func(o *options) { o.reuse = reuse }
}

// WithDown(true) removes the environment (as `devenv down` does) at the
// test's cleanup, waiting for other users to finish. The default, false,
// leaves it running for the next run: see the package documentation.
func WithDown(down bool) Option {
	return func(o *options) { o.down = down }
}

// WithKubeconfig names the kubeconfig file that holds (or receives) the
// cluster's kind-<name> context; the default is the user's ($KUBECONFIG or
// ~/.kube/config), as for `devenv up`.
func WithKubeconfig(path string) Option {
	return func(o *options) { o.kubeconfig = path }
}
