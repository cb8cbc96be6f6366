package images

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/devenv-tool/devenv/internal/dockerfile"
)

// RewriteDockerfile applies the stand-in rule to the images a Dockerfile
// builds on. It reads the file as `docker build` does (BuildKit's parser:
// `# escape=`, continuations, heredocs), finds every FROM image (and COPY
// --from=image), expands it with the global ARGs before the first FROM
// (build args winning over their defaults), leaves `scratch` and earlier
// stages (FROM x AS name) alone, and asks resolve which image to use for
// each. When resolve picks another image:
//
//   - FROM ${VAR} (one variable, nothing else): newArgs[VAR] is set to it and
//     the Dockerfile text is unchanged;
//   - any other form: the reference is replaced in the text, where it
//     stands; only when it is split over continued lines is the instruction
//     rewritten as one line.
//
// The result is meant for the build context devenv sends to the engine; the
// user's file is never written, and no stand-in is tagged under a real name.
// notes holds one line per replacement. Errors name the Dockerfile line.
func RewriteDockerfile(df []byte, buildArgs map[string]string, resolve func(ref string) (string, error)) (newDockerfile []byte, newArgs map[string]string, notes []string, err error) {
	newArgs = maps.Clone(buildArgs)
	if newArgs == nil {
		newArgs = map[string]string{}
	}
	f, err := dockerfile.Parse(df)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("Dockerfile %w", err)
	}
	globals, err := f.Globals(buildArgs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("Dockerfile %w", err)
	}
	cache := map[string]string{}
	resolveOnce := func(ref string) (string, error) {
		if r, ok := cache[ref]; ok {
			return r, nil
		}
		r, err := resolve(ref)
		if err != nil {
			return "", err
		}
		cache[ref] = r
		return r, nil
	}

	lines := strings.Split(string(df), "\n")
	stages := map[string]bool{}
	for _, n := range f.Nodes {
		lineNo := n.StartLine
		switch dockerfile.Keyword(n) {
		case "from":
			if n.Next == nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: FROM names no image", lineNo)
			}
			cmd, perr := dockerfile.Instruction(n)
			if perr != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: cannot read %q: %w", lineNo, n.Original, perr)
			}
			st := cmd.(*instructions.Stage)
			raw := st.BaseName
			x, xerr := f.Expand(raw, globals)
			if xerr != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: FROM %s: %w", lineNo, raw, xerr)
			}
			for _, v := range x.Unset {
				if !globals.Declared(v) {
					return nil, nil, nil, fmt.Errorf("Dockerfile line %d: FROM %s uses $%s, which no ARG before the first FROM declares: add `ARG %s=<image>` at the top or pass it as a build arg", lineNo, raw, v, v)
				}
			}
			ref := x.Result
			if ref == "" {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: FROM %s names no image (the ARG has no value): give the ARG a default or pass it as a build arg", lineNo, raw)
			}
			isStage := stages[strings.ToLower(ref)]
			if st.Name != "" {
				stages[st.Name] = true // lower-case already
			}
			if strings.EqualFold(ref, "scratch") || isStage {
				continue
			}
			got, rerr := resolveOnce(ref)
			if rerr != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: %w", lineNo, rerr)
			}
			if got == ref {
				continue
			}
			if v, ok := singleVar(raw); ok {
				newArgs[v] = got
				notes = append(notes, fmt.Sprintf("Dockerfile line %d: %s -> %s (build arg %s)", lineNo, ref, got, v))
				continue
			}
			if lines, err = replaceWord(lines, n, f.Escape, 1+len(n.Flags), raw, got); err != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: %w", lineNo, err)
			}
			notes = append(notes, fmt.Sprintf("Dockerfile line %d: %s -> %s", lineNo, ref, got))
		case "copy", "add":
			idx, from := copyFrom(n.Flags)
			if idx < 0 || strings.Contains(from, "$") || stages[strings.ToLower(from)] {
				continue
			}
			if _, err := strconv.Atoi(from); err == nil {
				continue // a stage index
			}
			got, rerr := resolveOnce(from)
			if rerr != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: %w", lineNo, rerr)
			}
			if got == from {
				continue
			}
			if lines, err = replaceWord(lines, n, f.Escape, 1+idx, "--from="+from, "--from="+got); err != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: %w", lineNo, err)
			}
			notes = append(notes, fmt.Sprintf("Dockerfile line %d: %s -> %s", lineNo, from, got))
		}
	}
	return []byte(strings.Join(lines, "\n")), newArgs, notes, nil
}

// copyFrom returns the index and value of a --from= flag of COPY/ADD among
// an instruction's flags, or -1.
func copyFrom(flags []string) (int, string) {
	for i, f := range flags {
		if v, ok := strings.CutPrefix(f, "--from="); ok {
			return i, v
		}
	}
	return -1, ""
}

var singleVarRef = regexp.MustCompile(`^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$`)

// singleVar reports whether s is exactly $VAR or ${VAR}, and names it.
func singleVar(s string) (string, bool) {
	m := singleVarRef.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[1] + m[2], true
}

// replaceWord changes word i (the keyword is word 0) of instruction n from
// old to new in the physical lines of the file and returns them. When the
// word stands whole on the instruction's first line it is replaced there and
// every other byte of the file is kept; otherwise (the word is on a
// continued line) the instruction's lines become one line, with the heredoc
// bodies that follow it kept.
func replaceWord(lines []string, n *parser.Node, escape rune, i int, old, new string) ([]string, error) {
	first := n.StartLine - 1
	if start, end, ok := wordAt(lines[first], first == 0, escape, i); ok && lines[first][start:end] == old {
		lines[first] = lines[first][:start] + new + lines[first][end:]
		return lines, nil
	}
	fields := strings.Fields(n.Original)
	if i >= len(fields) || fields[i] != old {
		return nil, fmt.Errorf("cannot rewrite %q: %s is not where it was expected", n.Original, old)
	}
	fields[i] = new
	one := strings.Join(fields, " ")
	last := dockerfile.InstructionEnd(n) - 1
	if strings.HasSuffix(lines[last], "\r") {
		one += "\r"
	}
	return append(lines[:first:first], append([]string{one}, lines[last+1:]...)...), nil
}

// wordAt returns the byte offsets of word i in a physical line, if the word
// is there whole: followed by a blank or the end of the instruction, not
// glued to the next line by a continuation.
func wordAt(line string, firstLine bool, escape rune, i int) (start, end int, ok bool) {
	body := strings.TrimSuffix(line, "\r")
	skip := 0
	if firstLine {
		skip = len(body) - len(strings.TrimPrefix(body, "\uFEFF"))
	}
	// The continuation character: the escape character last on the line
	// (blanks after it allowed), not itself escaped.
	t := strings.TrimRight(body, " \t")
	continued := false
	if strings.HasSuffix(t, string(escape)) && !strings.HasSuffix(t, string(escape)+string(escape)) {
		body, continued = t[:len(t)-1], true
	}
	w := -1
	for p := skip; p < len(body); {
		if body[p] == ' ' || body[p] == '\t' {
			p++
			continue
		}
		s := p
		for p < len(body) && body[p] != ' ' && body[p] != '\t' {
			p++
		}
		if w++; w == i {
			return s, p, p < len(body) || !continued
		}
	}
	return 0, 0, false
}
