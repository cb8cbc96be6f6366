// Package dockerfile reads Dockerfiles the way `docker build` does, so that
// every part of devenv that looks inside one agrees with the engine and with
// each other.
//
// It is a thin layer over BuildKit's own parser
// (github.com/moby/buildkit/frontend/dockerfile/parser) and shell lexer: the
// `# escape=` directive, line continuations (joined without a space, comment
// lines dropped), heredocs (whose bodies are not instructions) and the
// expansion of the ARGs declared before the first FROM all come from the code
// the engine runs. The stand-in rewrite (internal/images) and the image
// assembler (internal/build) both start here; what each then does with the
// instructions (typed by BuildKit's instructions package) is theirs.
//
// It is a leaf: it imports nothing of devenv's.
package dockerfile
