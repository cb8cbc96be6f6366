// Package templates holds devenv's Kubernetes manifests as embedded
// text/templates (one <name>.yaml.tmpl per kind of object) and renders them.
//
// A project can replace any of them with a file of the same name in a folder
// of its own (the templates: key of devenv.yaml); the data each template
// receives is the exported struct named after it (NamespaceData for
// namespace.yaml.tmpl, and so on).
//
// Functions available in templates: quote (a string as a double-quoted YAML
// scalar) and json (any value as JSON, which is valid YAML flow style).
package templates
