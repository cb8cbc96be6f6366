package testrun

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFormatLine(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Name: "transfer-roundtrip", Status: Passed, Duration: 1234 * time.Millisecond}, "✓ test transfer-roundtrip passed (1.2s)"},
		{Result{Name: "transfer-roundtrip", Status: Failed, ExitCode: 1, Duration: 400 * time.Millisecond}, "✗ test transfer-roundtrip failed (exit 1, 0.4s)"},
		{Result{Name: "x", Status: Failed, ExitCode: -1, Duration: 400 * time.Millisecond, Err: errors.New("sh ended: signal: killed")}, "✗ test x failed (sh ended: signal: killed, 0.4s)"},
		{Result{Name: "x", Status: TimedOut, ExitCode: -1, Duration: 2*time.Minute + 2*time.Second, Timeout: 2 * time.Minute}, "✗ test x timed out after 2m0s"},
		{Result{Name: "x", Status: Cancelled, ExitCode: -1, Duration: 90 * time.Second}, "✗ test x cancelled (1m30s)"},
		{Result{Name: "x", Status: Error, ExitCode: -1, Err: errors.New(`exec: "gotest": executable file not found in $PATH`)}, `✗ test x could not start: exec: "gotest": executable file not found in $PATH`},
	}
	for _, tt := range tests {
		if got := FormatLine(tt.r); got != tt.want {
			t.Errorf("FormatLine(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

// The JUnit shape as a reader (GitLab, Jenkins) sees it.
type readSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Time     string `xml:"time,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestWriteJUnit(t *testing.T) {
	results := []Result{
		{Name: "ok", Status: Passed, Duration: 1500 * time.Millisecond},
		{Name: "bad", Status: Failed, ExitCode: 2, Duration: 250 * time.Millisecond, Err: errors.New("exited with 2")},
		{Name: "slow", Status: TimedOut, ExitCode: -1, Duration: 2 * time.Minute, Timeout: 2 * time.Minute},
		{Name: "gone", Status: Error, ExitCode: -1, Err: errors.New("no such file or directory")},
	}
	outputs := map[string]string{"ok": "PASS\n", "bad": "want 1 <got> 2 & \x1b[31mred\x1b[0m \x00 ]]> \xff\n"}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, "cosmos", results, outputs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), xml.Header) {
		t.Errorf("no XML header:\n%s", buf.String())
	}
	var got readSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("the report does not parse: %v\n%s", err, buf.String())
	}
	if got.Tests != 4 || got.Failures != 2 || got.Errors != 1 || len(got.Suites) != 1 {
		t.Fatalf("testsuites tests/failures/errors = %d/%d/%d, %d suites\n%s", got.Tests, got.Failures, got.Errors, len(got.Suites), buf.String())
	}
	s := got.Suites[0]
	if s.Name != "cosmos" || s.Tests != 4 || s.Failures != 2 || s.Errors != 1 || s.Time != "121.750" || len(s.Cases) != 4 {
		t.Fatalf("suite = %+v", s)
	}
	for i, c := range s.Cases {
		if c.Name != results[i].Name || c.Classname != "cosmos" {
			t.Errorf("case %d = %+v, want %s", i, c, results[i].Name)
		}
	}
	ok, bad, slow, gone := s.Cases[0], s.Cases[1], s.Cases[2], s.Cases[3]
	if ok.Time != "1.500" || ok.Failure != nil || ok.Error != nil || ok.SystemOut != "PASS\n" {
		t.Errorf("ok = %+v", ok)
	}
	if bad.Failure == nil || bad.Failure.Message != "exit 2" || !strings.Contains(bad.Failure.Text, "failed (exit 2") {
		t.Errorf("bad = %+v", bad)
	}
	if bad.SystemOut != "want 1 <got> 2 & red \uFFFD ]]> \uFFFD\n" {
		t.Errorf("bad output = %q", bad.SystemOut)
	}
	if slow.Failure == nil || slow.Failure.Message != "timed out after 2m0s" || slow.Time != "120.000" {
		t.Errorf("slow = %+v", slow)
	}
	if gone.Error == nil || !strings.Contains(gone.Error.Message, "could not start: no such file") || gone.Failure != nil {
		t.Errorf("gone = %+v", gone)
	}
}

func TestWriteJUnitEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, "shop", nil, nil); err != nil {
		t.Fatal(err)
	}
	var got readSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil || got.Tests != 0 || len(got.Suites) != 1 {
		t.Errorf("err %v, report %+v", err, got)
	}
}

func TestExcerpt(t *testing.T) {
	if got := Excerpt("a\nb\n", 5); got != "    a\n    b" {
		t.Errorf("short output: %q", got)
	}
	if got := Excerpt("1\n2\n3\n4\n", 2); got != "    (2 earlier lines left out)\n    3\n    4" {
		t.Errorf("long output: %q", got)
	}
}
