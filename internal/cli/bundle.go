package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/termx"
)

func init() { commands = append(commands, newBundleCmd) }

type bundleFlags struct {
	output string
	noLive bool
}

func newBundleCmd(g *globals) *cobra.Command {
	f := &bundleFlags{}
	cmd := &cobra.Command{
		Use:   "bundle FILE",
		Short: "Write one archive with every image this project needs, for machines with no network",
		Long: `Write into FILE every image a machine with only Docker and the devenv binary
needs to run this project with no network: the kind node image, the Kafka and
H2 images the project uses, the images its Dockerfiles start FROM (each as
Docker has it: the real image, else its stand-in; the registry is never
tried) and the services' images. A service image that is not current is
built first, as devenv up builds it.

FILE is in docker save format, gzip-compressed when it ends in .gz or .tgz.
It appears only when complete: an error or Ctrl-C removes the partial file.
On the other machine: devenv images load FILE, then devenv up (no pull).

Exit code 2 when FILE cannot be written there or an image the project needs
is not present (each is named, with how to get it).

With -o json (--output json), a JSON object with the fields file, size
(bytes), seconds (the whole run), saveSeconds and images (role, ref, local,
standIn, service, built).`,
		Example: `  devenv bundle room.tar.gz
  devenv bundle -f devenv.yaml -o json room.tar.gz`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cmd, f.output, "text", "json"); err != nil {
				return err
			}
			return runBundle(cmd.Context(), g, f, args[0])
		},
	}
	addOutputFlag(cmd, &f.output, "text", "json")
	cmd.Flags().BoolVar(&f.noLive, "no-live", false, "bundle the images devenv up --no-live builds (without the live-update supervisor)")
	return cmd
}

// bundleResult is what bundle prints with -o json.
type bundleResult struct {
	File        string         `json:"file"`
	Size        int64          `json:"size"`
	Seconds     float64        `json:"seconds"`
	SaveSeconds float64        `json:"saveSeconds"`
	Images      []bundledImage `json:"images"`
}

type bundledImage struct {
	Role    string `json:"role"`
	Ref     string `json:"ref"`
	Local   string `json:"local"`
	StandIn bool   `json:"standIn"`
	Service string `json:"service,omitempty"`
	Built   bool   `json:"built"`
}

// badInput is an error of the user's input that is not a command-line
// mistake: exit code 2, printed as it is, without a hint to --help.
type badInput struct{ err error }

func (e badInput) Error() string        { return e.err.Error() }
func (e badInput) Unwrap() error        { return e.err }
func (e badInput) Is(target error) bool { return target == ErrUsage }

func runBundle(ctx context.Context, g *globals, f *bundleFlags, file string) error {
	start := time.Now()
	// Before any build: a bundle that cannot be written is known at once.
	if err := images.CheckTarget(file); err != nil {
		return badInput{err}
	}
	cfg, err := config.Load(g.configFiles()...)
	if err != nil {
		return err
	}
	lg := g.logger()
	opts := devenv.Options{Log: lg, Live: !f.noLive}
	if g.verbose {
		opts.BuildOutput = g.streams.Err
	}
	list, err := devenv.BundleImages(ctx, cfg, opts)
	if errors.Is(err, devenv.ErrMissingImages) {
		return badInput{fmt.Errorf("%w\nthen run devenv bundle again", err)}
	}
	if err != nil {
		return err
	}
	var refs []string
	res := bundleResult{File: file}
	for _, im := range list {
		if !slices.Contains(refs, im.Local) {
			refs = append(refs, im.Local)
		}
		res.Images = append(res.Images, bundledImage{Role: im.Role, Ref: im.Ref, Local: im.Local, StandIn: im.StandIn, Service: im.Service, Built: im.Built})
		if im.StandIn {
			lg.Debugf("%s %s: stand-in %s", im.Role, im.Ref, im.Local)
		}
	}
	lg.Infof("• saving %d images to %s", len(refs), file)
	for _, r := range refs {
		lg.Debugf("  %s", r)
	}
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		return err
	}
	defer docker.Close()
	tty := termx.IsTerminal(g.streams.Err)
	saveStart := time.Now()
	res.Size, err = images.SaveWith(ctx, docker, file, refs, images.SaveOptions{
		Progress:      saveProgress(g.streams.Err, tty, file),
		ProgressEvery: progressEvery(tty),
	})
	if tty {
		fmt.Fprint(g.streams.Err, "\r\033[K")
	}
	if errors.Is(err, images.ErrTarget) {
		return badInput{err}
	}
	if err != nil {
		return err
	}
	res.SaveSeconds = time.Since(saveStart).Seconds()
	res.Seconds = time.Since(start).Seconds()
	if f.output == "json" {
		return writeJSON(g.streams.Out, res)
	}
	fmt.Fprintf(g.streams.Out, "✓ wrote %s: %d images, %s in %s (saving took %s)\n", file, len(refs), humanSize(res.Size),
		roundSeconds(res.Seconds), roundSeconds(res.SaveSeconds))
	fmt.Fprintf(g.streams.Out, "Hand out %s and the devenv binary; on each machine: devenv images load %s, then devenv up.\n", file, file)
	return nil
}

// saveProgress reports an archive being written: on a terminal one status
// line rewritten in place, otherwise a plain line each time.
func saveProgress(w io.Writer, tty bool, file string) func(int64, time.Duration) {
	return func(written int64, elapsed time.Duration) {
		if tty {
			fmt.Fprintf(w, "\r\033[K  %s: %s written [%6.1fs]", file, humanSize(written), elapsed.Seconds())
			return
		}
		fmt.Fprintf(w, "  [%6.1fs] %s: %s written\n", elapsed.Seconds(), file, humanSize(written))
	}
}

// loadProgress reports an archive being read by images load.
func loadProgress(w io.Writer, tty bool, file string) func(int64, int64, time.Duration) {
	return func(read, size int64, elapsed time.Duration) {
		what := humanSize(read)
		if size > 0 {
			what += " of " + humanSize(size)
		}
		if tty {
			fmt.Fprintf(w, "\r\033[K  %s: %s read [%6.1fs]", file, what, elapsed.Seconds())
			return
		}
		fmt.Fprintf(w, "  [%6.1fs] %s: %s read\n", elapsed.Seconds(), file, what)
	}
}

// progressEvery is how often progress is shown: often on a terminal, where
// the line is rewritten, rarely in a log.
func progressEvery(tty bool) time.Duration {
	if tty {
		return 200 * time.Millisecond
	}
	return 5 * time.Second
}

// humanSize prints a byte count in MB (GB from 10 GB).
func humanSize(n int64) string {
	if n >= 10e9 {
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

func roundSeconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
