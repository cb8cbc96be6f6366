package dockerfile

import (
	"slices"
	"strings"
	"testing"
)

func TestGlobals(t *testing.T) {
	tests := []struct {
		name     string
		df       string
		args     map[string]string
		word     string
		want     string
		wantUsed []string
		unset    []string
	}{
		{name: "several on one line", df: "ARG A=alpine B=2\nFROM $A\n", word: "$A", want: "alpine", wantUsed: []string{"A"}},
		{name: "second of several", df: "ARG A=alpine B=2\nFROM $A\n", word: "${B}", want: "2", wantUsed: []string{"B"}},
		{name: "quoted default", df: "ARG A=\"a b\"\nFROM x\n", word: "$A", want: "a b", wantUsed: []string{"A"}},
		{name: "earlier ARG used in a default", df: "ARG R=repo\nARG I=${R}:1\nFROM $I\n", word: "$I", want: "repo:1", wantUsed: []string{"I"}},
		{name: "build arg wins", df: "ARG R=repo\nARG I=${R}:1\nFROM $I\n", args: map[string]string{"R": "other"}, word: "$I", want: "other:1", wantUsed: []string{"I"}},
		{name: "declared without value", df: "ARG V\nFROM x\n", word: "img:${V:-17}", want: "img:17", unset: []string{"V"}},
		{name: "ARG after FROM is not global", df: "FROM x\nARG V=1\n", word: "$V", want: "", unset: []string{"V"}},
		{name: "continued default joins without a space", df: "ARG I=repo:\\\n1\nFROM $I\n", word: "$I", want: "repo:1", wantUsed: []string{"I"}},
		{name: "backtick escape", df: "# escape=`\nARG I=C:\\dir\nFROM x\n", word: "$I", want: `C:\dir`, wantUsed: []string{"I"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.df))
			if err != nil {
				t.Fatal(err)
			}
			g, err := f.Globals(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			x, err := f.Expand(tc.word, g)
			if err != nil {
				t.Fatal(err)
			}
			if x.Result != tc.want || !slices.Equal(x.Used, tc.wantUsed) || !slices.Equal(x.Unset, tc.unset) {
				t.Errorf("Expand(%q) = %+v, want %q used %q unset %q", tc.word, x, tc.want, tc.wantUsed, tc.unset)
			}
		})
	}
}

func TestParse(t *testing.T) {
	df := "# escape=`\nFROM a `\n  AS b\nRUN <<EOF\nFROM c\nEOF\nCOPY --from=b <<X /y\nz\nX\n"
	f, err := Parse([]byte(df))
	if err != nil {
		t.Fatal(err)
	}
	if f.Escape != '`' {
		t.Errorf("escape = %q", f.Escape)
	}
	var got []string
	for _, n := range f.Nodes {
		got = append(got, Keyword(n))
	}
	if want := []string{"from", "run", "copy"}; !slices.Equal(got, want) {
		t.Fatalf("instructions = %q, want %q", got, want)
	}
	for i, want := range [][3]int{{2, 3, 3}, {4, 6, 4}, {7, 9, 7}} {
		n := f.Nodes[i]
		if n.StartLine != want[0] || n.EndLine != want[1] || InstructionEnd(n) != want[2] {
			t.Errorf("%s: lines %d-%d, instruction ends %d; want %v", Keyword(n), n.StartLine, n.EndLine, InstructionEnd(n), want)
		}
	}

	if _, err := Parse([]byte("FROM a\nRUN <<EOF\nnever ends\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("unterminated heredoc: err = %v, want it to name line 2", err)
	}
	if _, err := Parse([]byte("# escape=x\nFROM a\n")); err == nil || !strings.Contains(err.Error(), "invalid escape token") {
		t.Errorf("bad escape: err = %v, want it to say so", err)
	}
}
