package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
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

var varRef = regexp.MustCompile(`\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)`)

// parseRecipe reads a Dockerfile. It returns an error wrapping errNotSimple
// when the engine's builder is needed, saying why.
func parseRecipe(df []byte, buildArgs map[string]string) (*recipe, error) {
	lines := strings.Split(strings.ReplaceAll(string(df), "\r\n", "\n"), "\n")
	r := &recipe{}
	args := map[string]string{} // ARGs before FROM, with their values
	from := false
	for i := 0; i < len(lines); i++ {
		start := i + 1
		l := strings.TrimSpace(lines[i])
		if i == 0 || !from {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(l, " ", "")), "#escape=") ||
				strings.HasPrefix(strings.ToLower(strings.ReplaceAll(l, " ", "")), "#syntax=") {
				return nil, fmt.Errorf("%w: line %d: parser directive", errNotSimple, start)
			}
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		// Continuation lines; comment and empty lines inside are dropped, as
		// docker does.
		for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if next == "" || strings.HasPrefix(next, "#") {
				continue
			}
			l = strings.TrimSuffix(l, "\\") + " " + next
		}
		op, rest, _ := strings.Cut(l, " ")
		op = strings.ToLower(op)
		rest = strings.TrimSpace(rest)
		switch {
		case op == "arg" && !from:
			name, val, hasVal := strings.Cut(rest, "=")
			if strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("%w: line %d: ARG with several names", errNotSimple, start)
			}
			if v, ok := buildArgs[name]; ok {
				val = v
			} else if !hasVal {
				val = ""
			}
			args[name] = unquoteArg(val)
			continue
		case op == "from":
			if from {
				return nil, fmt.Errorf("%w: line %d: several stages", errNotSimple, start)
			}
			from = true
			f := strings.Fields(rest)
			if len(f) != 1 {
				return nil, fmt.Errorf("%w: line %d: FROM with flags or a stage name", errNotSimple, start)
			}
			base := varRef.ReplaceAllStringFunc(f[0], func(m string) string {
				return args[strings.Trim(m, "${}")]
			})
			if base == "" || strings.Contains(base, "$") {
				return nil, fmt.Errorf("%w: line %d: FROM %s names no image", errNotSimple, start, f[0])
			}
			if base != "scratch" {
				r.base = base
			}
			continue
		case !from:
			return nil, fmt.Errorf("%w: line %d: %s before FROM", errNotSimple, start, strings.ToUpper(op))
		}
		if strings.Contains(rest, "$") {
			return nil, fmt.Errorf("%w: line %d: variables after FROM", errNotSimple, start)
		}
		s := step{line: start, op: op}
		switch op {
		case "copy":
			if strings.HasPrefix(rest, "--") {
				return nil, fmt.Errorf("%w: line %d: COPY with flags", errNotSimple, start)
			}
			fallthrough
		case "entrypoint", "cmd":
			if strings.HasPrefix(rest, "[") {
				if err := json.Unmarshal([]byte(rest), &s.args); err != nil {
					return nil, fmt.Errorf("%w: line %d: %s: %v", errNotSimple, start, strings.ToUpper(op), err)
				}
				s.json = true
			} else if op == "copy" {
				s.args = strings.Fields(rest)
			} else {
				s.args = []string{rest}
			}
			if op == "copy" && len(s.args) < 2 {
				return nil, fmt.Errorf("%w: line %d: COPY needs a source and a destination", errNotSimple, start)
			}
		case "env", "label":
			kv, err := keyValues(rest)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %s: %v", errNotSimple, start, strings.ToUpper(op), err)
			}
			s.args = kv
		case "workdir", "user":
			s.args = []string{rest}
		case "expose":
			s.args = strings.Fields(rest)
		default:
			return nil, fmt.Errorf("%w: line %d: %s", errNotSimple, start, strings.ToUpper(op))
		}
		r.steps = append(r.steps, s)
	}
	if !from {
		return nil, fmt.Errorf("%w: no FROM", errNotSimple)
	}
	return r, nil
}

// keyValues parses ENV and LABEL arguments: key=value pairs (values may be
// double-quoted) or the old "key value" form. It returns key, value, ...
func keyValues(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no key")
	}
	if !strings.Contains(strings.Fields(s)[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return []string{k, strings.TrimSpace(v)}, nil
	}
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'") {
			return nil, fmt.Errorf("cannot read %q", s)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 || strings.Contains(rest[1:end+1], `\`) {
				return nil, fmt.Errorf("cannot read %q", s)
			}
			v, s = rest[1:end+1], rest[end+2:]
		} else if strings.HasPrefix(rest, `'`) || strings.Contains(strings.SplitN(rest, " ", 2)[0], `\`) {
			return nil, fmt.Errorf("cannot read %q", s)
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, unquoteArg(k), v)
	}
	return out, nil
}

func unquoteArg(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
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
