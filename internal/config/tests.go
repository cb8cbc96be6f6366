package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultTestTimeout is how long a declared test may run when its timeout:
// is left out.
const DefaultTestTimeout = 5 * time.Minute

// Test is a declared test (tests: in devenv.yaml): a command run on the host
// after an update of the services it depends on while devenv up watches, and
// by devenv test.
type Test struct {
	Name string // a DNS label: it names files and JUnit test cases
	// Command is the argv to run, or with Shell a single script run with
	// sh -c. Argv gives the argv in both cases.
	Command  []string
	Shell    bool
	Dir      string        // absolute; default: the folder of the file that declares the test
	Services []string      // sorted; default: every enabled service. A service switched off with enabled: false is left out
	Timeout  time.Duration // > 0; default DefaultTestTimeout
	Env      map[string]string
	Pos      Pos // the test's key
}

// Argv is the command line to execute: Command, or sh -c Command[0] for a
// Shell test.
func (t *Test) Argv() []string {
	if t.Shell {
		return append([]string{"sh", "-c"}, t.Command...)
	}
	return t.Command
}

// Test returns the declared test called name, or nil.
func (c *Config) Test(name string) *Test {
	i := sort.Search(len(c.Tests), func(i int) bool { return c.Tests[i].Name >= name })
	if i < len(c.Tests) && c.Tests[i].Name == name {
		return c.Tests[i]
	}
	return nil
}

func testSchema() *schemaNode {
	return object("A test run on the host after an update of the services it depends on (while devenv up watches) and by devenv test.", map[string]*schemaNode{
		"command": {Description: "The command: an argv list, e.g. [\"go\", \"test\", \"./e2e\"], or a string run with sh -c.",
			OneOf: []*schemaNode{
				{Type: "array", Description: "argv, run without a shell.", Items: &schemaNode{Type: "string"}, MinItems: intPtr(1)},
				str("A script run with sh -c."),
			}},
		"dir":      str("Folder the command runs in, relative to the config file that sets it. Default: the folder of the config file."),
		"services": strList("Services whose update runs the test. Default: every service."),
		"timeout":  {Type: "string", Description: "How long the test may run, as a Go duration, e.g. 90s or 2m. Default: 5m.", Pattern: `^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`},
		"env":      scalarMap("Extra environment variables for the command (besides the DEVENV_* ones devenv sets)."),
	}, "command")
}

// testsSchemaNode is the schema of the tests: section.
func testsSchemaNode() *schemaNode {
	return &schemaNode{Type: "object", Description: "Tests, by name (a DNS label).",
		PropertyNames:        &schemaNode{Type: "string", Pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
		AdditionalProperties: testSchema()}
}

// tests decodes the tests: section. It runs after the services are decoded:
// all are the names given under services:, enabled the ones that are on.
func (d *decoder) tests(n *yaml.Node, s *schemaNode, all map[string]bool, enabled []string) []*Test {
	var out []*Test
	d.entries(n, "tests", "test names to tests", func(k, v *yaml.Node) {
		if t := d.test(k, v, s, all, enabled); t != nil {
			out = append(out, t)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// test decodes one test; nil when it is unusable.
func (d *decoder) test(key, n *yaml.Node, s *schemaNode, all map[string]bool, enabled []string) *Test {
	name := key.Value
	path := "tests." + name
	t := &Test{Name: name, Timeout: DefaultTestTimeout, Env: map[string]string{}, Pos: d.pos(key)}
	ok := true
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		d.errorf(key, path, "%q is not a valid test name (it names files and JUnit test cases): %s", name, strings.Join(msgs, "; "))
		ok = false
	}
	if isNull(n) {
		d.errorf(key, path+".command", "missing; say what to run, e.g. command: [\"go\", \"test\", \"./e2e\"]")
		return nil
	}
	var dirNode, servicesNode *yaml.Node
	commandSet := false
	d.object(n, path, s, func(k string, _, v *yaml.Node) {
		field := path + "." + k
		switch k {
		case "command":
			commandSet = true
			t.Command, t.Shell = d.command(v, field)
			if t.Command == nil {
				ok = false
			}
		case "dir":
			t.Dir, dirNode = d.filePath(v, field), v
		case "services":
			servicesNode = v
			t.Services = d.testServices(v, field, all, enabled)
		case "timeout":
			t.Timeout = d.duration(v, field)
			if t.Timeout == 0 {
				ok = false
			}
		case "env":
			t.Env = d.strMap(v, field)
			for _, name := range SortedKeys(t.Env) {
				if msgs := validation.IsEnvVarName(name); len(msgs) > 0 {
					d.errorf(v, field+"."+name, "not a valid environment variable name: %s", strings.Join(msgs, "; "))
					ok = false
				}
			}
		}
	})
	if n.Kind != yaml.MappingNode {
		return nil // object reported it
	}
	if !commandSet {
		d.errorf(key, path+".command", "missing; say what to run, e.g. command: [\"go\", \"test\", \"./e2e\"]")
		ok = false
	}
	if servicesNode == nil {
		t.Services = append([]string(nil), enabled...)
	}
	// The folder defaults to the one of the file that first declared the test.
	dirPos := key
	if dirNode != nil {
		dirPos = dirNode
	}
	if t.Dir == "" {
		t.Dir = d.dir[d.file[key]]
	}
	if st, err := os.Stat(t.Dir); err != nil {
		d.errorf(dirPos, path+".dir", "folder %s does not exist; create it or set dir: (relative to the config file)", t.Dir)
		ok = false
	} else if !st.IsDir() {
		d.errorf(dirPos, path+".dir", "%s is not a folder; set dir: to the folder the command runs in", t.Dir)
		ok = false
	}
	if !ok {
		return nil
	}
	return t
}

// command reads a test's command: a non-empty argv list, or a non-empty
// string run with sh -c. nil when it is unusable (reported).
func (d *decoder) command(n *yaml.Node, path string) ([]string, bool) {
	const example = `["go", "test", "./e2e"] or "make e2e"`
	switch {
	case isNull(n):
		d.errorf(n, path, "empty command; say what to run, e.g. %s", example)
	case n.Kind == yaml.ScalarNode:
		if strings.TrimSpace(n.Value) == "" {
			d.errorf(n, path, "empty command; say what to run, e.g. %s", example)
			return nil, false
		}
		return []string{n.Value}, true
	case n.Kind == yaml.SequenceNode:
		argv := d.strList(n, path, example)
		if len(argv) != len(n.Content) {
			return nil, false // reported
		}
		if len(argv) == 0 || argv[0] == "" {
			d.errorf(n, path, "empty command; say what to run, e.g. %s", example)
			return nil, false
		}
		return argv, false
	default:
		d.errorf(n, path, "expected a list (argv) or a string (run with sh -c), e.g. %s; got %s", example, describe(n))
	}
	return nil, false
}

// duration reads a positive Go duration; 0 when it is not one (reported).
func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, path, "expected a duration such as 90s or 2m; got %s", describe(n))
		return 0
	}
	v, err := time.ParseDuration(n.Value)
	switch {
	case err != nil && n.Tag == "!!int":
		d.errorf(n, path, "%s has no unit; write e.g. %ss or %sm", n.Value, n.Value, n.Value)
		return 0
	case err != nil:
		d.errorf(n, path, "%q is not a duration; expected e.g. 90s, 2m or 1m30s", n.Value)
		return 0
	case v <= 0:
		d.errorf(n, path, "%s is not a usable timeout; it must be more than 0, e.g. 2m", n.Value)
		return 0
	}
	return v
}

// testServices reads the services a test depends on: each must be a service
// of the file, named once. A service switched off with enabled: false is
// dropped from the list.
func (d *decoder) testServices(n *yaml.Node, path string, all map[string]bool, enabled []string) []string {
	if isNull(n) {
		return append([]string(nil), enabled...)
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list of service names, e.g. [account]; got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.errorf(n, path, "empty list; name the services whose update runs the test, or leave services: out for every service")
		return nil
	}
	on := map[string]bool{}
	for _, s := range enabled {
		on[s] = true
	}
	var out []string
	seen := map[string]int{}
	for i, c := range n.Content {
		c = deref(c)
		field := fmt.Sprintf("%s[%d]", path, i)
		if c.Kind != yaml.ScalarNode || isNull(c) {
			d.errorf(c, field, "expected a service name; got %s", describe(c))
			continue
		}
		name := c.Value
		if line, dup := seen[name]; dup {
			d.errorf(c, field, "service %q is already listed on line %d; name it once", name, line)
			continue
		}
		seen[name] = c.Line
		switch {
		case on[name]:
			out = append(out, name)
		case all[name]:
			// switched off: nothing of it to update
		default:
			d.errorf(c, field, "unknown service %q; %s", name, serviceHint(name, enabled))
		}
	}
	sort.Strings(out)
	return out
}

// serviceHint is the did-you-mean (or the list of services) for an unknown
// service name.
func serviceHint(name string, services []string) string {
	if c := closest(name, services); c != "" {
		return fmt.Sprintf("did you mean %q?", c)
	}
	if len(services) == 0 {
		return "there are no services"
	}
	return "the services are " + strings.Join(services, ", ")
}
