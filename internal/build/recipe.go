package build

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/devenv-tool/devenv/internal/dockerfile"
)

// errNotSimple means a Dockerfile needs the engine's builder: it runs
// commands, has several stages, or uses an instruction or flag devenv does
// not assemble itself.
var errNotSimple = errors.New("built by the engine (devenv assembles only simple Dockerfiles)")

// recipe is a Dockerfile devenv can assemble without the engine: one FROM
// (an image or scratch) followed by COPY and configuration instructions.
type recipe struct {
	base  string // "" for scratch
	steps []step
}

// step is one instruction after FROM.
type step struct {
	line int    // 1-based line in the Dockerfile
	op   string // lower-case instruction
	args []string
	// json is set when the arguments were given in JSON (exec) form.
	json bool
}

// parseRecipe reads a Dockerfile as `docker build` does (BuildKit's parser:
// `# escape=`, continuations, heredocs, global ARGs expanded with build args
// winning). It returns an error wrapping errNotSimple when the engine's
// builder is needed, saying why.
func parseRecipe(df []byte, buildArgs map[string]string) (*recipe, error) {
	if _, _, loc, ok := parser.DetectSyntax(df); ok {
		line := 1
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		return nil, fmt.Errorf("%w: line %d: syntax directive", errNotSimple, line)
	}
	f, err := dockerfile.Parse(df)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotSimple, err)
	}
	globals, err := f.Globals(buildArgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotSimple, err)
	}
	// After FROM, words are expanded as the engine does (quotes removed,
	// escapes applied); variables are refused below, so no environment.
	expand := func(word string) (string, error) {
		x, err := f.Expand(word, nil)
		return x.Result, err
	}
	r := &recipe{}
	from := false
	for _, n := range f.Nodes {
		start := n.StartLine
		op := dockerfile.Keyword(n)
		switch {
		case op == "arg" && !from:
			continue // read by Globals
		case op == "from":
			if from {
				return nil, fmt.Errorf("%w: line %d: several stages", errNotSimple, start)
			}
			from = true
			if len(n.Flags) > 0 || n.Next == nil || n.Next.Next != nil {
				return nil, fmt.Errorf("%w: line %d: FROM with flags or a stage name", errNotSimple, start)
			}
			cmd, err := dockerfile.Instruction(n)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", errNotSimple, start, err)
			}
			raw := cmd.(*instructions.Stage).BaseName
			x, err := f.Expand(raw, globals)
			if err != nil || x.Result == "" || strings.Contains(x.Result, "$") {
				return nil, fmt.Errorf("%w: line %d: FROM %s names no image", errNotSimple, start, raw)
			}
			if x.Result != "scratch" {
				r.base = x.Result
			}
			continue
		case !from:
			return nil, fmt.Errorf("%w: line %d: %s before FROM", errNotSimple, start, strings.ToUpper(op))
		}
		if strings.Contains(n.Original, "$") {
			return nil, fmt.Errorf("%w: line %d: variables after FROM", errNotSimple, start)
		}
		if len(n.Heredocs) > 0 {
			return nil, fmt.Errorf("%w: line %d: %s with a heredoc", errNotSimple, start, strings.ToUpper(op))
		}
		switch op {
		case "copy", "env", "label", "workdir", "user", "expose", "entrypoint", "cmd":
		default:
			return nil, fmt.Errorf("%w: line %d: %s", errNotSimple, start, strings.ToUpper(op))
		}
		cmd, err := dockerfile.Instruction(n)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %s: %v", errNotSimple, start, strings.ToUpper(op), err)
		}
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(expand); err != nil {
				return nil, fmt.Errorf("%w: line %d: %s: %v", errNotSimple, start, strings.ToUpper(op), err)
			}
		}
		s := step{line: start, op: op, json: n.Attributes["json"]}
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			if len(n.Flags) > 0 {
				return nil, fmt.Errorf("%w: line %d: COPY with flags", errNotSimple, start)
			}
			s.args = append(slices.Clone(c.SourcePaths), c.DestPath)
		case *instructions.EnvCommand:
			s.args = keyValues(c.Env)
		case *instructions.LabelCommand:
			s.args = keyValues(c.Labels)
		case *instructions.WorkdirCommand:
			s.args = []string{c.Path}
		case *instructions.UserCommand:
			s.args = []string{c.User}
		case *instructions.ExposeCommand:
			s.args = c.Ports
		case *instructions.EntrypointCommand:
			s.args = cmdLine(c.ShellDependantCmdLine)
		case *instructions.CmdCommand:
			s.args = cmdLine(c.ShellDependantCmdLine)
		}
		r.steps = append(r.steps, s)
	}
	if !from {
		return nil, fmt.Errorf("%w: no FROM", errNotSimple)
	}
	return r, nil
}

// keyValues flattens ENV and LABEL pairs: key, value, ...
func keyValues(kvs instructions.KeyValuePairs) []string {
	out := make([]string, 0, 2*len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.Key, kv.Value)
	}
	return out
}

// cmdLine returns an ENTRYPOINT or CMD's arguments: the exec form's list, or
// the shell form's one command line (the step's json field tells which).
func cmdLine(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return []string{strings.Join(c.CmdLine, " ")}
	}
	return slices.Clone(c.CmdLine)
}

// recipeOf reads the Dockerfile bytes of spec (or opts' replacement).
func recipeOf(spec Spec, opts ContextOptions) (*recipe, error) {
	df := opts.Dockerfile
	if df == nil {
		b, err := os.ReadFile(spec.dockerfile())
		if err != nil {
			return nil, err
		}
		df = b
	}
	return parseRecipe(df, spec.Args)
}
