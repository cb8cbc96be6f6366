package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/render"
	"github.com/devenv-tool/devenv/internal/scaffold"
)

func init() { commands = append(commands, newInitCmd) }

type initFlags struct {
	example string
	lang    string
	name    string
	output  string
}

// initResult is what devenv init -o json prints.
type initResult struct {
	Dir     string   `json:"dir"`
	Name    string   `json:"name"`
	Example string   `json:"example,omitempty"`
	Lang    string   `json:"lang,omitempty"`
	Files   []string `json:"files"`
}

func newInitCmd(g *globals) *cobra.Command {
	f := &initFlags{}
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Start a new project: devenv.yaml, services, Dockerfiles, build scripts",
		Long: `Write a new project into DIR (default: the current folder; created when
missing): a devenv.yaml, a README.md saying what to run and what to try, and
one or more services, each with its sources, a Dockerfile, a build script and
a README.md. Then run devenv up in DIR.

Choose one form:
  --lang go          one Go service publishing to Kafka (standard library and franz-go)
  --lang java        one Java service on an H2 database server (JDK and H2 only, no Maven)
  --example cosmos   the seed chapter's two services: account (Java, H2) and
                     transfermoney (Go, Kafka), as in the repository's devenv.yaml

The project name (devenv.yaml's name:, the kind cluster's name) is --name, or
DIR's base name made a valid name (lower case, other characters as '-').

init never overwrites: when any file it would write exists, it writes nothing,
names every clash and exits 2. After writing it checks the new devenv.yaml as
devenv validate does.

With -o json (--output json), one JSON object with the fields dir, name, lang
or example, and files (the files written, relative to dir).`,
		Example: `  devenv init --lang go shop              # ./shop, project "shop": one Go service on Kafka
  devenv init --lang java --name notes    # here, project "notes": one Java service on H2
  devenv init --example cosmos workshop   # ./workshop: the cosmos example's two services
  cd shop && devenv up                    # then edit a file and watch it update
  devenv init --lang go -o json demo      # the files written, for scripts`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cmd, f.output, "text", "json"); err != nil {
				return err
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runInit(cmd, f, dir, g.streams)
		},
	}
	cmd.Flags().StringVar(&f.lang, "lang", "", "one service in this language: "+strings.Join(scaffold.Langs(), " or "))
	cmd.Flags().StringVar(&f.example, "example", "", "a complete example: "+strings.Join(scaffold.Examples(), " or "))
	cmd.Flags().StringVar(&f.name, "name", "", "project name (default: DIR's base name, made a valid name)")
	_ = cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions(scaffold.Langs(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("example", cobra.FixedCompletions(scaffold.Examples(), cobra.ShellCompDirectiveNoFileComp))
	addOutputFlag(cmd, &f.output, "text", "json")
	return cmd
}

// initForm returns the scaffold form the flags choose, or a usage error.
func initForm(cmd *cobra.Command, f *initFlags) (string, error) {
	usage := func(format string, args ...any) error {
		return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
	}
	choices := "--lang " + strings.Join(scaffold.Langs(), ", --lang ") + " or --example " + strings.Join(scaffold.Examples(), ", --example ")
	switch {
	case f.lang != "" && f.example != "":
		return "", usage("--lang and --example exclude each other: choose %s", choices)
	case f.lang != "":
		for _, l := range scaffold.Langs() {
			if f.lang == l {
				return l, nil
			}
		}
		return "", usage("--lang %q: expected %s", f.lang, strings.Join(scaffold.Langs(), " or "))
	case f.example != "":
		for _, e := range scaffold.Examples() {
			if f.example == e {
				return e, nil
			}
		}
		return "", usage("--example %q: expected %s", f.example, strings.Join(scaffold.Examples(), " or "))
	}
	return "", usage("say what to create: %s", choices)
}

func runInit(cmd *cobra.Command, f *initFlags, dir string, streams Streams) error {
	form, err := initForm(cmd, f)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("finding folder %s: %w", dir, err)
	}
	name := f.name
	if name == "" {
		if name = scaffold.ProjectName(filepath.Base(abs)); name == "" {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("cannot make a project name from the folder name %q: pass --name", filepath.Base(abs))}
		}
	} else if err := scaffold.CheckName(name); err != nil {
		return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--name: %w (lower-case letters, digits and '-')", err)}
	}
	files, err := scaffold.Files(form, scaffold.Data{Name: name})
	if err != nil {
		return err
	}
	if err := scaffold.Write(abs, files); err != nil {
		var clash *scaffold.ClashError
		if errors.As(err, &clash) {
			fmt.Fprintf(streams.Err, "error: %s: %d of the files to write exist already; nothing written:\n", dir, len(clash.Paths))
			for _, p := range clash.Paths {
				fmt.Fprintf(streams.Err, "  %s\n", filepath.Join(dir, filepath.FromSlash(p)))
			}
			fmt.Fprintln(streams.Err, "Move them away, or choose another folder.")
			return exitError{code: ExitConfig}
		}
		return err
	}
	if err := checkWritten(filepath.Join(abs, "devenv.yaml")); err != nil {
		return err
	}
	res := initResult{Dir: abs, Name: name, Files: make([]string, len(files))}
	if form == f.lang {
		res.Lang = form
	} else {
		res.Example = form
	}
	for i, fl := range files {
		res.Files[i] = fl.Path
	}
	return printInit(streams.Out, f.output, dir, res)
}

// checkWritten loads and renders the devenv.yaml just written, as devenv
// validate does. A failure is devenv's bug, not the user's: the error says
// so and exits 1, not 2.
func checkWritten(file string) error {
	cfg, err := config.Load(file)
	if err == nil {
		noEnv := func(string) (string, bool) { return "", false }
		_, err = render.Objects(cfg, render.Options{LookupEnv: noEnv})
	}
	if err != nil {
		// %v, not %w: not a configuration error of the user's (exit 2).
		return fmt.Errorf("checking the devenv.yaml devenv init wrote (a bug in devenv init's templates; please report it): %v", err)
	}
	return nil
}

func printInit(out io.Writer, output, dir string, res initResult) error {
	if output == "json" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("writing the file list: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	what := "--lang " + res.Lang
	if res.Example != "" {
		what = "--example " + res.Example
	}
	fmt.Fprintf(out, "✓ wrote project %s (%s) into %s: %s\n", res.Name, what, dir, plural(len(res.Files), "file"))
	for _, p := range res.Files {
		fmt.Fprintf(out, "  %s\n", p)
	}
	next := "devenv up"
	if filepath.Clean(dir) != "." {
		next = "cd " + dir + " && devenv up"
	}
	_, err := fmt.Fprintf(out, "Next: %s, then edit a file and watch it update (see README.md).\n", next)
	return err
}
