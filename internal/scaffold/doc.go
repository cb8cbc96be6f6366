// Package scaffold writes the starting points of `devenv init`: a new
// project folder with a devenv.yaml, a top-level README and one or more
// services, each with its sources, a Dockerfile, a build script and a short
// README.
//
// The project files are embedded (go:embed) under _files, one folder per
// form: cosmos (a copy of examples/cosmos, checked against it by a test),
// go (one Go service publishing to Kafka) and java (one Java service on an
// H2 server). A file whose name ends in .tmpl is a text/template filled with
// the project's name, and is written without the suffix; go.mod files are
// stored that way so that the embedded folders stay part of this module.
//
// Write refuses to overwrite: when any file it would write exists, it writes
// nothing and returns a *ClashError naming every clash. Checking the written
// devenv.yaml is the caller's job (it is a leaf: no internal/config here).
package scaffold
