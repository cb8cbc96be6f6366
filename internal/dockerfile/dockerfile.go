package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// File is a parsed Dockerfile.
type File struct {
	// Nodes are the instructions in order, as BuildKit's parser returns
	// them: StartLine and EndLine are the 1-based physical lines an
	// instruction spans (its heredoc bodies included), Original is its text
	// with continuations joined.
	Nodes []*parser.Node
	// Escape is the escape character (`\` unless `# escape=` says otherwise).
	Escape rune
}

// Parse parses a Dockerfile. Errors name the line.
func Parse(df []byte) (*File, error) {
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		return nil, located(err)
	}
	return &File{Nodes: res.AST.Children, Escape: res.EscapeToken}, nil
}

// Globals are the ARGs declared before the first FROM, with the values
// `docker build` gives them: a build arg passed for a declared name wins;
// otherwise the default, expanded with the globals declared before it. A
// name declared without a default and not passed has no value.
//
// Globals implements shell.EnvGetter (Get and Keys).
type Globals struct {
	values   map[string]string
	declared map[string]bool
}

// Globals evaluates the ARG instructions before the first FROM with
// buildArgs. Instructions other than ARG before the first FROM are skipped.
func (f *File) Globals(buildArgs map[string]string) (*Globals, error) {
	g := &Globals{values: map[string]string{}, declared: map[string]bool{}}
	lex := shell.NewLex(f.Escape)
	for _, n := range f.Nodes {
		if Keyword(n) == "from" {
			break
		}
		if Keyword(n) != "arg" {
			continue
		}
		cmd, err := Instruction(n)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.StartLine, err)
		}
		for _, kv := range cmd.(*instructions.ArgCommand).Args {
			g.declared[kv.Key] = true
			if v, ok := buildArgs[kv.Key]; ok {
				g.values[kv.Key] = v
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, g)
			if err != nil {
				return nil, fmt.Errorf("line %d: ARG %s: %w", n.StartLine, kv.Key, unlocated(err))
			}
			g.values[kv.Key] = v
		}
	}
	return g, nil
}

// Get returns the value of a global ARG, and whether it has one.
func (g *Globals) Get(name string) (string, bool) {
	v, ok := g.values[name]
	return v, ok
}

// Keys lists the global ARGs that have a value.
func (g *Globals) Keys() []string {
	keys := make([]string, 0, len(g.values))
	for k := range g.values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Declared reports whether an ARG before the first FROM declares name.
func (g *Globals) Declared(name string) bool { return g.declared[name] }

// Expansion is a word after variable expansion.
type Expansion struct {
	Result string
	// Used are the variables the word refers to that have a value;
	// Unset those it refers to that have none.
	Used, Unset []string
}

// Expand substitutes variables in word ($VAR, ${VAR}, ${VAR:-default}...)
// from env and removes quotes, with the file's escape character, as the
// engine does for a FROM image or a COPY path.
func (f *File) Expand(word string, env shell.EnvGetter) (Expansion, error) {
	if env == nil {
		env = noEnv{}
	}
	res, err := shell.NewLex(f.Escape).ProcessWordWithMatches(word, env)
	if err != nil {
		return Expansion{}, unlocated(err)
	}
	return Expansion{Result: res.Result, Used: sortedKeys(res.Matched), Unset: sortedKeys(res.Unmatched)}, nil
}

// Keyword returns the lower-case instruction of a node ("from", "copy"...).
func Keyword(n *parser.Node) string { return strings.ToLower(n.Value) }

// Instruction types one instruction with BuildKit's instructions package
// (*instructions.Stage for FROM, *instructions.CopyCommand for COPY...).
// Errors carry no location: the caller names the line.
func Instruction(n *parser.Node) (any, error) {
	cmd, err := instructions.ParseInstruction(n)
	if err != nil {
		return nil, unlocated(err)
	}
	return cmd, nil
}

// InstructionEnd returns the last physical line of n's instruction text:
// EndLine without the heredoc bodies that follow it.
func InstructionEnd(n *parser.Node) int {
	end := n.EndLine
	for _, h := range n.Heredocs {
		end -= bytes.Count([]byte(h.Content), []byte("\n")) + 1 // body and terminator
	}
	return max(end, n.StartLine)
}

type noEnv struct{}

func (noEnv) Get(string) (string, bool) { return "", false }
func (noEnv) Keys() []string            { return nil }

func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// located turns a BuildKit parse error into "line N: message". (BuildKit
// places an error in a parser directive at line 0; that one is left
// without a line.)
func located(err error) error {
	var le *parser.LocationError
	if !errors.As(err, &le) {
		return err
	}
	if len(le.Locations) > 0 && len(le.Locations[0]) > 0 && le.Locations[0][0].Start.Line > 0 {
		return fmt.Errorf("line %d: %w", le.Locations[0][0].Start.Line, le.Unwrap())
	}
	return le.Unwrap()
}

// unlocated drops the location BuildKit attaches (callers name the line).
func unlocated(err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) {
		return le.Unwrap()
	}
	return err
}
