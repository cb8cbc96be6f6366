package render

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// joinErrors joins errs, or returns the only one unchanged.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// The Secret template is given the secrets' values, so its errors are
// reported without the rendered text and without anything the template or
// YAML error might quote from it: only where it went wrong.

// secretTemplateError reduces an error from executing the Secret template to
// its place: "template: secret.yaml.tmpl:5:3: executing ... at <.Data.pw>".
// What follows (e.g. "range can't iterate over <value>") may hold a value.
func secretTemplateError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, ">: "); i >= 0 {
		msg = msg[:i+1]
	} else if m := templatePlaceRE.FindString(msg); m != "" {
		msg = m
	} else {
		msg = "rendering template secret"
	}
	return fmt.Errorf("%s: failed (the details are not shown because they may contain secret values)", msg)
}

var (
	templatePlaceRE = regexp.MustCompile(`^rendering template secret: template: [^:]+:\d+(:\d+)?`)
	yamlLineRE      = regexp.MustCompile(`line \d+`)
)

// secretYAMLError reports that the Secret template produced text that is not
// a YAML object, with the line when the parser gave one.
func secretYAMLError(err error) error {
	where := ""
	if m := yamlLineRE.FindString(err.Error()); m != "" {
		where = " at " + m
	}
	return fmt.Errorf("template secret produced invalid YAML%s (the text and details are not shown because they contain secret values)", where)
}
