package testrun

import (
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatLine is the one line said about a result, e.g.
// "✓ test transfer-roundtrip passed (1.2s)" or
// "✗ test transfer-roundtrip failed (exit 1, 0.4s)".
func FormatLine(r Result) string {
	switch r.Status {
	case Passed:
		return fmt.Sprintf("✓ test %s passed (%s)", r.Name, seconds(r.Duration))
	case Failed:
		if r.ExitCode >= 0 {
			return fmt.Sprintf("✗ test %s failed (exit %d, %s)", r.Name, r.ExitCode, seconds(r.Duration))
		}
		return fmt.Sprintf("✗ test %s failed (%v, %s)", r.Name, r.Err, seconds(r.Duration))
	case TimedOut:
		return fmt.Sprintf("✗ test %s timed out after %s", r.Name, r.Timeout)
	case Cancelled:
		return fmt.Sprintf("✗ test %s cancelled (%s)", r.Name, seconds(r.Duration))
	default:
		return fmt.Sprintf("✗ test %s could not start: %v", r.Name, r.Err)
	}
}

// seconds is a short duration: 0.4s, 12.0s, 2m5s.
func seconds(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// The JUnit XML that GitLab and Jenkins read.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut *junitOutput  `xml:"system-out,omitempty"`
}

// junitOutput is a test's output, kept as CDATA so that it stays readable.
type junitOutput struct {
	Text string `xml:",cdata"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes results as a JUnit XML report of one suite: a testcase
// per result, with its time in seconds, a <failure> for a test that failed
// or timed out, an <error> for one that could not start or was cancelled,
// and outputs[name] (the test's output, without terminal colour sequences)
// as its <system-out>.
func WriteJUnit(w io.Writer, suite string, results []Result, outputs map[string]string) error {
	s := junitSuite{Name: suite, Tests: len(results)}
	var total time.Duration
	for _, r := range results {
		total += r.Duration
		c := junitCase{Name: r.Name, Classname: suite, Time: secs(r.Duration)}
		if out := outputs[r.Name]; out != "" {
			c.SystemOut = &junitOutput{Text: xmlText(out)}
		}
		line := FormatLine(r)
		switch r.Status {
		case Passed:
		case Failed:
			msg := fmt.Sprintf("exit %d", r.ExitCode)
			if r.ExitCode < 0 {
				msg = errText(r.Err)
			}
			c.Failure = &junitProblem{Message: msg, Type: "failed", Text: line}
			s.Failures++
		case TimedOut:
			c.Failure = &junitProblem{Message: "timed out after " + r.Timeout.String(), Type: "timeout", Text: line}
			s.Failures++
		case Cancelled:
			c.Error = &junitProblem{Message: "cancelled", Type: "cancelled", Text: line}
			s.Errors++
		default:
			c.Error = &junitProblem{Message: "could not start: " + errText(r.Err), Type: "error", Text: line}
			s.Errors++
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = secs(total)
	doc := junitSuites{Name: suite, Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	return nil
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ansiRE matches terminal colour and cursor sequences.
var ansiRE = regexp.MustCompile("\x1b\\[[0-9;?]*[ -/]*[@-~]")

// xmlText is s without terminal escape sequences, with what XML 1.0 cannot
// hold (other control characters, invalid UTF-8) as U+FFFD.
func xmlText(s string) string {
	s = ansiRE.ReplaceAllString(s, "")
	return strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError, r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE || r == 0xFFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}

// Excerpt is what is shown of a test's output when it did not pass: its
// last n lines (saying how many earlier ones are left out), indented by
// four spaces under the test's ✗ line.
func Excerpt(output string, n int) string {
	lines := strings.Split(strings.TrimRight(output, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d earlier lines left out)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return "    " + strings.Join(lines, "\n    ")
}
