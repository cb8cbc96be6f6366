// Package config reads devenv.yaml: strict decoding (an unknown or misspelt
// field, a wrong type or a bad value is an error naming the file, the line and
// the field path), defaults so a minimal file stays short, and the merge of
// several files where later ones override earlier ones.
//
// The package keeps raw strings: references such as ${kafka.address} are
// resolved by internal/render, which reports problems with the line numbers
// kept here.
package config
