package build

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/devenv-tool/devenv/internal/dockerfile"
)

// rewriteRunHeredocs rewrites each RUN with a heredoc (`RUN <<EOF ... EOF`)
// as the exec-form RUN that BuildKit's Dockerfile frontend (1.4 and later)
// makes of it, for the builders that cannot parse heredocs: the legacy
// builder, and BuildKit v0.8's built-in frontend (Docker 20.10), which
// would need a `# syntax=` frontend image from a registry. It reports
// whether it changed anything.
//
// As the frontend does, a RUN whose only argument is a heredoc runs the
// heredoc's text with the stage's shell; any other RUN with heredocs runs
// its command line followed by the heredocs (the shell reads them). A
// heredoc starting with "#!" (run as a file by the frontend), a file with a
// `# syntax=` directive (its frontend decides) and COPY/ADD heredocs are
// left alone. The rewritten instruction keeps its flags and its lines: it
// takes one line and empty lines take the others, so the engine's messages
// name the lines of the Dockerfile as written.
func rewriteRunHeredocs(df []byte) ([]byte, bool) {
	if _, _, _, ok := parser.DetectSyntax(df); ok {
		return df, false
	}
	f, err := dockerfile.Parse(df)
	if err != nil {
		return df, false // the engine names the error
	}
	lines := strings.SplitAfter(string(df), "\n")
	shells := map[string][]string{} // stage name -> its SHELL
	var shell []string
	stage := ""
	changed := false
	for _, n := range f.Nodes {
		switch dockerfile.Keyword(n) {
		case "from":
			shell, stage = []string{"/bin/sh", "-c"}, ""
			if cmd, err := dockerfile.Instruction(n); err == nil {
				st := cmd.(*instructions.Stage)
				if s, ok := shells[strings.ToLower(st.BaseName)]; ok {
					shell = s
				}
				stage = strings.ToLower(st.Name)
			}
			if stage != "" {
				shells[stage] = shell
			}
		case "shell":
			if cmd, err := dockerfile.Instruction(n); err == nil {
				shell = cmd.(*instructions.ShellCommand).Shell
				if stage != "" {
					shells[stage] = shell
				}
			}
		case "run":
			if len(n.Heredocs) == 0 {
				continue
			}
			cmd, err := dockerfile.Instruction(n)
			if err != nil {
				return df, false
			}
			args, ok := heredocArgs(cmd.(*instructions.RunCommand))
			if !ok {
				continue
			}
			exec, err := json.Marshal(append(append([]string{}, shell...), args))
			if err != nil {
				return df, false
			}
			text := "RUN "
			if len(n.Flags) > 0 {
				text += strings.Join(n.Flags, " ") + " "
			}
			text += string(exec) + "\n"
			if n.StartLine < 1 || n.EndLine > len(lines) {
				return df, false
			}
			lines[n.StartLine-1] = text
			for i := n.StartLine; i < n.EndLine; i++ {
				lines[i] = "\n"
			}
			changed = true
		}
	}
	if !changed {
		return df, false
	}
	return []byte(strings.Join(lines, "")), true
}

// heredocArgs returns the shell's last argument for a RUN with heredocs,
// as BuildKit's frontend builds it (dockerfile2llb dispatchRun); false for
// what the rewrite leaves alone.
func heredocArgs(c *instructions.RunCommand) (string, bool) {
	if len(c.Files) == 0 || len(c.CmdLine) != 1 || !c.PrependShell {
		return "", false
	}
	if parser.MustParseHeredoc(c.CmdLine[0]) != nil {
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			return "", false
		}
		return data, true
	}
	var b bytes.Buffer
	b.WriteString(c.CmdLine[0])
	for _, file := range c.Files {
		b.WriteByte('\n')
		b.WriteString(file.Data)
		b.WriteString(file.Name)
	}
	return b.String(), true
}
