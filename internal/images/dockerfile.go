package images

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
)

// RewriteDockerfile applies the stand-in rule to the images a Dockerfile
// builds on. It finds every FROM image (and COPY --from=image), expands
// ${VAR} from the global ARGs before the first FROM and from buildArgs, leaves
// `scratch` and earlier stages (FROM x AS name) alone, and asks resolve which
// image to use for each. When resolve picks another image:
//
//   - FROM ${VAR} (one variable, nothing else): newArgs[VAR] is set to it and
//     the Dockerfile text is unchanged;
//   - any other form: the reference is replaced in the text.
//
// The result is meant for the build context devenv sends to the engine; the
// user's file is never written, and no stand-in is tagged under a real name.
// notes holds one line per replacement. Errors name the Dockerfile line.
func RewriteDockerfile(dockerfile []byte, buildArgs map[string]string, resolve func(ref string) (string, error)) (newDockerfile []byte, newArgs map[string]string, notes []string, err error) {
	lines := strings.Split(string(dockerfile), "\n")
	newArgs = maps.Clone(buildArgs)
	if newArgs == nil {
		newArgs = map[string]string{}
	}
	escape := escapeChar(lines)
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

	globals := map[string]string{} // global ARG name -> effective value
	declared := map[string]bool{}
	stages := map[string]bool{}
	seenFrom := false
	var out []string
	for i := 0; i < len(lines); {
		start := i
		inst, end := logicalLine(lines, i, escape)
		i = end + 1
		fields := strings.Fields(inst)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			out = append(out, lines[start:end+1]...)
			continue
		}
		lineNo := start + 1
		keyword := strings.ToUpper(fields[0])
		switch {
		case keyword == "ARG" && !seenFrom:
			for _, decl := range fields[1:] {
				name, val, hasVal := strings.Cut(decl, "=")
				declared[name] = true
				if v, ok := buildArgs[name]; ok {
					globals[name] = v
				} else if hasVal {
					globals[name] = expand(unquote(val), globals)
				}
			}
		case keyword == "FROM":
			seenFrom = true
			idx, raw, stage, perr := parseFrom(fields)
			if perr != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: %w", lineNo, perr)
			}
			for _, v := range varsIn(raw) {
				if !declared[v] {
					return nil, nil, nil, fmt.Errorf("Dockerfile line %d: FROM %s uses $%s, which no ARG before the first FROM declares: add `ARG %s=<image>` at the top or pass it as a build arg", lineNo, raw, v, v)
				}
			}
			ref := expand(raw, globals)
			if ref == "" {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: FROM %s names no image (the ARG has no value): give the ARG a default or pass it as a build arg", lineNo, raw)
			}
			isStage := stages[strings.ToLower(ref)]
			if stage != "" {
				stages[strings.ToLower(stage)] = true
			}
			if strings.EqualFold(ref, "scratch") || isStage {
				break
			}
			got, rerr := resolveOnce(ref)
			if rerr != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: %w", lineNo, rerr)
			}
			if got == ref {
				break
			}
			if v, ok := singleVar(raw); ok {
				newArgs[v] = got
				notes = append(notes, fmt.Sprintf("Dockerfile line %d: %s -> %s (build arg %s)", lineNo, ref, got, v))
				break
			}
			fields[idx] = got
			notes = append(notes, fmt.Sprintf("Dockerfile line %d: %s -> %s", lineNo, ref, got))
			out = append(out, replaceInstruction(lines[start:end+1], raw, got, fields)...)
			continue
		case keyword == "COPY" || keyword == "ADD":
			idx, from := copyFrom(fields)
			if idx < 0 || strings.Contains(from, "$") || stages[strings.ToLower(from)] {
				break
			}
			if _, err := strconv.Atoi(from); err == nil {
				break // a stage index
			}
			got, rerr := resolveOnce(from)
			if rerr != nil {
				return nil, nil, nil, fmt.Errorf("Dockerfile line %d: %w", lineNo, rerr)
			}
			if got == from {
				break
			}
			fields[idx] = "--from=" + got
			notes = append(notes, fmt.Sprintf("Dockerfile line %d: %s -> %s", lineNo, from, got))
			out = append(out, replaceInstruction(lines[start:end+1], "--from="+from, "--from="+got, fields)...)
			continue
		}
		out = append(out, lines[start:end+1]...)
	}
	return []byte(strings.Join(out, "\n")), newArgs, notes, nil
}

// escapeChar reads the `# escape=` parser directive (backslash by default).
func escapeChar(lines []string) byte {
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "#") {
			break
		}
		k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(t, "#")), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "escape") {
			if v = strings.TrimSpace(v); len(v) == 1 {
				return v[0]
			}
		}
	}
	return '\\'
}

// logicalLine joins lines[i:] continued with the escape character and returns
// the instruction text and the index of its last physical line. Comment lines
// inside a continued instruction are skipped, as Docker does.
func logicalLine(lines []string, i int, escape byte) (string, int) {
	var b strings.Builder
	for j := i; j < len(lines); j++ {
		l := strings.TrimRight(lines[j], " \t\r")
		if j > i && strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if j == i && strings.HasPrefix(strings.TrimSpace(l), "#") {
			return l, j
		}
		if len(l) > 0 && l[len(l)-1] == escape {
			b.WriteString(l[:len(l)-1])
			b.WriteByte(' ')
			continue
		}
		b.WriteString(l)
		return b.String(), j
	}
	return b.String(), len(lines) - 1
}

// parseFrom returns the index and text of the image in a FROM instruction's
// fields and the stage name after AS, if any.
func parseFrom(fields []string) (idx int, image, stage string, err error) {
	idx = 1
	for idx < len(fields) && strings.HasPrefix(fields[idx], "--") {
		idx++
	}
	if idx >= len(fields) {
		return 0, "", "", fmt.Errorf("FROM names no image")
	}
	rest := fields[idx+1:]
	switch {
	case len(rest) == 0:
	case len(rest) == 2 && strings.EqualFold(rest[0], "AS"):
		stage = rest[1]
	default:
		return 0, "", "", fmt.Errorf("cannot read %q: expected FROM [--platform=...] IMAGE [AS NAME]", strings.Join(fields, " "))
	}
	return idx, fields[idx], stage, nil
}

// copyFrom returns the index and value of a --from= flag of COPY/ADD, or -1.
func copyFrom(fields []string) (int, string) {
	for i, f := range fields[1:] {
		if !strings.HasPrefix(f, "--") {
			break
		}
		if v, ok := strings.CutPrefix(f, "--from="); ok {
			return i + 1, v
		}
	}
	return -1, ""
}

var varRef = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))`)

// varsIn lists the variables s refers to.
func varsIn(s string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1]+m[4])
	}
	return out
}

// expand substitutes $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alt} from vars.
func expand(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		sm := varRef.FindStringSubmatch(m)
		name := sm[1] + sm[4]
		val, set := vars[name]
		switch sm[2] {
		case ":-":
			if val == "" {
				return sm[3]
			}
		case "-":
			if !set {
				return sm[3]
			}
		case ":+":
			if val != "" {
				return sm[3]
			}
			return ""
		case "+":
			if set {
				return sm[3]
			}
			return ""
		}
		return val
	})
}

// singleVar reports whether s is exactly $VAR or ${VAR}, and names it.
func singleVar(s string) (string, bool) {
	m := varRef.FindStringSubmatch(s)
	if m == nil || m[0] != s || m[2] != "" {
		return "", false
	}
	return m[1] + m[4], true
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// replaceInstruction returns the physical lines of an instruction with old
// replaced by new: in place when the instruction is one line, else as one
// rebuilt line.
func replaceInstruction(phys []string, old, new string, fields []string) []string {
	if len(phys) == 1 {
		line := phys[0]
		kw := strings.Index(strings.ToUpper(line), strings.ToUpper(fields[0]))
		if kw >= 0 {
			if j := strings.Index(line[kw:], old); j >= 0 {
				j += kw
				return []string{line[:j] + new + line[j+len(old):]}
			}
		}
	}
	return []string{strings.Join(fields, " ")}
}
