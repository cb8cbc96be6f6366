package config

import (
	"os"
	"os/user"
	"regexp"
	"strings"
)

// refRE matches, in this order at each place: an escaped $${, a reference
// ${...}, and a ${ that no } closes.
var refRE = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}|\$\{`)

// Expand resolves the ${...} references in v with lookup, which gets the
// trimmed name between the braces; $${ writes a literal ${. It is the one
// expander of devenv.yaml: Load uses it for namespace: (${user},
// ${env.NAME}), internal/render for config values (${kafka.address}, ...).
// The first error is returned; field names the setting in it.
func Expand(v Value, field string, lookup func(ref string) (string, error)) (string, error) {
	var firstErr error
	out := refRE.ReplaceAllStringFunc(v.Value, func(m string) string {
		if m == "$${" {
			return "${"
		}
		if m == "${" {
			if firstErr == nil {
				firstErr = v.Pos.Errorf(field, `"${" without its closing "}"; write ${name} for a reference, or $${ for a literal ${`)
			}
			return m
		}
		val, err := lookup(strings.TrimSpace(m[2 : len(m)-1]))
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return val
	})
	if firstErr != nil {
		return "", firstErr
	}
	return out, nil
}

// EnvUser is the environment variable that sets ${user} (for CI), instead
// of the operating system's user name.
const EnvUser = "DEVENV_USER"

// namespace expands the references a namespace may use: ${user} and
// ${env.NAME}.
func (d *decoder) namespace(v Value) (string, error) {
	const field = "namespace"
	return Expand(v, field, func(ref string) (string, error) {
		switch {
		case ref == "user":
			name, ok := os.LookupEnv(EnvUser)
			if !ok || name == "" {
				u, err := user.Current()
				if err != nil || u.Username == "" {
					name = os.Getenv("USER")
				} else {
					name = u.Username
				}
			}
			label := UserLabel(name)
			if label == "" {
				return "", v.Pos.Errorf(field, "${user}: cannot tell the user name (%q has no letters or digits); set %s", name, EnvUser)
			}
			return label, nil
		case strings.HasPrefix(ref, "env."):
			name := strings.TrimPrefix(ref, "env.")
			val, ok := os.LookupEnv(name)
			if !ok {
				return "", v.Pos.Errorf(field, "${%s}: the environment variable %s is not set; set it, or write the namespace without it", ref, name)
			}
			return val, nil
		}
		return "", v.Pos.Errorf(field, "unknown reference ${%s}; a namespace may use ${user} and ${env.NAME} (write $${ for a literal ${)", ref)
	})
}

// UserLabel turns a user name into a DNS label part for ${user}: lowercased,
// each character outside [a-z0-9-] replaced by '-', at most 63 characters,
// without a leading or trailing '-'. It is "" when nothing is left.
func UserLabel(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}
