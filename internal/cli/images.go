package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/termx"
)

func init() { commands = append(commands, newImagesCmd) }

func newImagesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build, list, save and load devenv's offline stand-in images",
		Long: `devenv needs a few images it may not be able to pull: the kind node image,
a Kafka broker, a Java runtime base for service Dockerfiles, and an H2 server.
"devenv images build" builds stand-ins for them locally (tagged devenv.local/...,
never under the real names); devenv then uses a stand-in whenever the real image
is not present and cannot be pulled, and says so in one line.`,
		Example: `  devenv images build
  devenv images list
  devenv images save devenv-images.tar.gz
  devenv images load devenv-images.tar.gz`,
	}
	cmd.AddCommand(newImagesBuildCmd(g), newImagesListCmd(g), newImagesSaveCmd(g), newImagesLoadCmd(g))
	return cmd
}

type imagesBuildFlags struct {
	force  bool
	needed bool
}

func newImagesBuildCmd(g *globals) *cobra.Command {
	f := &imagesBuildFlags{}
	cmd := &cobra.Command{
		Use:   "build [NAME...]",
		Short: "Build the stand-in images that are missing or out of date",
		Long: `Build stand-in images in dependency order. An image whose recipe has not
changed since it was built is skipped, so a second run takes seconds. Naming
stand-ins builds only those (and what they need). Host tools a build needs are
checked first; a missing one is reported with the apt-get line that installs it.`,
		Example: `  devenv images build            # everything
  devenv images build jre h2     # only the JRE and H2 stand-ins (and the Debian base)
  devenv images build --force h2 # rebuild H2 even if it is up to date
  devenv images build --needed   # only what devenv.yaml needs and this machine cannot pull`,
		Args:              cobra.ArbitraryArgs, // names, checked by runImagesBuild
		ValidArgsFunction: completeStandIns,
		RunE: func(cmd *cobra.Command, args []string) error {
			cli, err := dockerx.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			return runImagesBuild(cmd.Context(), g, cli, args, f)
		},
	}
	cmd.Flags().BoolVar(&f.force, "force", false, "rebuild the named stand-ins (all when none is named) even if up to date")
	cmd.Flags().BoolVar(&f.needed, "needed", false, "build only the stand-ins for images the config (-f) uses that are neither present nor pullable")
	return cmd
}

func runImagesBuild(ctx context.Context, g *globals, cli *client.Client, names []string, f *imagesBuildFlags) error {
	var known []string
	for _, s := range images.All() {
		known = append(known, s.Name)
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return fmt.Errorf("%w: unknown stand-in %q: choose from %s", ErrUsage, n, strings.Join(known, ", "))
		}
	}
	if f.needed {
		cfg, err := config.Load(g.configFiles()...)
		if err != nil {
			return err
		}
		refs, err := configImages(cfg)
		if err != nil {
			return err
		}
		needed, err := images.NewResolver(cli, g.logger()).Needed(ctx, refs)
		if err != nil {
			return err
		}
		if len(needed) == 0 {
			fmt.Fprintf(g.streams.Err, "✓ every image %s uses is present or can be pulled: no stand-in needed\n", cfg.Files[0])
			return nil
		}
		fmt.Fprintf(g.streams.Err, "%s needs stand-ins: %s\n", cfg.Files[0], strings.Join(needed, ", "))
		names = append(names, needed...)
	}
	return images.Build(ctx, cli, images.BuildOptions{
		Only:    names,
		Force:   f.force,
		Log:     g.logger(),
		Out:     g.streams.Err,
		Verbose: g.verbose,
	})
}

type imagesListFlags struct {
	output string
}

func newImagesListCmd(g *globals) *cobra.Command {
	f := &imagesListFlags{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the stand-in images and whether they are built and current",
		Long: `List the stand-in images: name, image, the image each replaces, whether it
is built and built from the current recipe, its size and age.

With -o json (--output json), a JSON array of objects with the fields name, ref,
replaces, present, id, size (bytes), created and upToDate.`,
		Example: `  devenv images list
  devenv images list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, f.output, "table", "json"); err != nil {
				return err
			}
			cli, err := dockerx.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			infos, err := images.List(cmd.Context(), cli)
			if err != nil {
				return err
			}
			return printImages(g.streams.Out, infos, f.output, time.Now())
		},
	}
	addOutputFlag(cmd, &f.output, "table", "json")
	return cmd
}

// printImages writes the list as a table or as JSON.
func printImages(w io.Writer, infos []images.Info, format string, now time.Time) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE\tREPLACES\tSTATUS\tSIZE\tCREATED")
	for _, in := range infos {
		status, size, age := "missing", "-", "-"
		if in.Present {
			status = "up to date"
			if !in.UpToDate {
				status = "outdated"
			}
			size = fmt.Sprintf("%.0f MB", float64(in.Size)/1e6)
			if !in.Created.IsZero() {
				age = humanAge(now.Sub(in.Created)) + " ago"
			}
		}
		replaces := in.Replaces
		if replaces == "" {
			replaces = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Ref, replaces, status, size, age)
	}
	return tw.Flush()
}

func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

type imagesSaveFlags struct {
	all bool
}

func newImagesSaveCmd(g *globals) *cobra.Command {
	f := &imagesSaveFlags{}
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Save the stand-in images into one archive for another machine",
		Long: `Write every stand-in image that is present into FILE (docker save format;
gzip-compressed when FILE ends in .gz or .tgz). With --all, also the real images
the stand-ins replace when they are present locally (kindest/node, eclipse-temurin, ...).
Copy FILE to another machine and run "devenv images load FILE" there.`,
		Example: `  devenv images save devenv-images.tar.gz
  devenv images save --all everything.tar`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cli, err := dockerx.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			return runImagesSave(cmd.Context(), g, cli, args[0], f)
		},
	}
	cmd.Flags().BoolVar(&f.all, "all", false, "also save the real images the stand-ins replace, when present")
	return cmd
}

func runImagesSave(ctx context.Context, g *globals, cli *client.Client, file string, f *imagesSaveFlags) error {
	lg := g.logger()
	var refs []string
	for _, s := range images.All() {
		_, err := cli.ImageInspect(ctx, s.Ref)
		switch {
		case cerrdefs.IsNotFound(err):
			lg.Warnf("%s (%s) is not built; skipping it", s.Name, s.Ref)
			continue
		case err != nil:
			return fmt.Errorf("inspecting %s: %w", s.Ref, err)
		}
		refs = append(refs, s.Ref)
	}
	if f.all {
		real, err := realImages(ctx, cli, images.All())
		if err != nil {
			return err
		}
		refs = append(refs, real...)
	}
	if len(refs) == 0 {
		return fmt.Errorf("no stand-in image is built: run `devenv images build` first")
	}
	lg.Infof("saving %d images to %s: %s", len(refs), file, strings.Join(refs, ", "))
	start := time.Now()
	if err := images.Save(ctx, cli, file, refs); err != nil {
		return err
	}
	lg.Infof("✓ saved %s in %s", file, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// realImages lists local tags of the real images the stand-ins replace.
func realImages(ctx context.Context, cli *client.Client, cat []standin.StandIn) ([]string, error) {
	list, err := cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	var out []string
	for _, img := range list.Items {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, standin.Registry+"/") {
				continue
			}
			for _, s := range cat {
				repo, _, _ := strings.Cut(tag, ":")
				if (s.Matches != nil && s.Matches(tag)) || (s.For != "" && (repo == s.For || repo == "docker.io/"+s.For)) {
					out = append(out, tag)
					break
				}
			}
		}
	}
	return out, nil
}

type imagesLoadFlags struct {
	output string
}

func newImagesLoadCmd(g *globals) *cobra.Command {
	f := &imagesLoadFlags{}
	cmd := &cobra.Command{
		Use:   "load FILE",
		Short: "Load images from an archive written by `devenv images save` or `devenv bundle`",
		Long: `Load every image in FILE into Docker (gzip-compressed or not) and say what
was loaded and how long it took. Stand-ins loaded from FILE are then used by
devenv up for the images they replace without trying the registry first (as
long as the real image is not present); delete the pull-failed folder in
devenv's cache folder to try the registry again.

With -o json (--output json), a JSON object with the fields file, size
(bytes), seconds and images (what Docker reported loading).`,
		Example: `  devenv images load room.tar.gz
  devenv images load devenv-images.tar.gz
  devenv images load images.tar   # any docker save archive works too`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cmd, f.output, "text", "json"); err != nil {
				return err
			}
			cli, err := dockerx.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			return runImagesLoad(cmd.Context(), g, cli, args[0], f)
		},
	}
	addOutputFlag(cmd, &f.output, "text", "json")
	return cmd
}

// imagesLoadResult is what images load prints with -o json.
type imagesLoadResult struct {
	File    string   `json:"file"`
	Size    int64    `json:"size"`
	Seconds float64  `json:"seconds"`
	Images  []string `json:"images"`
}

func runImagesLoad(ctx context.Context, g *globals, cli *client.Client, file string, f *imagesLoadFlags) error {
	lg := g.logger()
	fi, err := os.Stat(file)
	if err != nil {
		return badInput{fmt.Errorf("loading images: %w", err)}
	}
	tty := termx.IsTerminal(g.streams.Err)
	start := time.Now()
	loaded, err := images.LoadWith(ctx, cli, file, images.LoadOptions{
		Log:           lg,
		Progress:      loadProgress(g.streams.Err, tty, file),
		ProgressEvery: progressEvery(tty),
	})
	if tty {
		fmt.Fprint(g.streams.Err, "\r\033[K")
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	if dir, err := images.RememberDir(); err == nil {
		noted, err := images.NoteLoaded(dir, loaded)
		if err != nil {
			lg.Warnf("%v", err)
		} else if len(noted) > 0 {
			lg.Debugf("noted in %s: up uses the loaded stand-ins %s without trying the registry", dir, strings.Join(noted, ", "))
		}
	}
	res := imagesLoadResult{File: file, Size: fi.Size(), Seconds: took.Seconds(), Images: loaded}
	if f.output == "json" {
		return writeJSON(g.streams.Out, res)
	}
	fmt.Fprintf(g.streams.Out, "✓ loaded %s from %s (%s) in %s\n", plural(len(loaded), "image"), file, humanSize(res.Size), took.Round(100*time.Millisecond))
	return nil
}

// configImages lists every image the config uses: the node image, the Kafka
// and H2 images, and the images the services' Dockerfiles start FROM
// (build args included).
func configImages(cfg *config.Config) ([]string, error) {
	wanted, err := devenv.WantedImages(cfg)
	if err != nil {
		return nil, err
	}
	refs := make([]string, len(wanted))
	for i, w := range wanted {
		refs[i] = w.Ref
	}
	return refs, nil
}
