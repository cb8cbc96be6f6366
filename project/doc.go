// Package project owns the names devenv shares between its parts: the label
// keys (one namespace, devenv.dev/*), the default images, the kind Docker
// network's name, and the project's identity (ID) that container names,
// labels and selectors are keyed on.
//
// It is a leaf: it imports nothing of devenv's, so every part can use it
// without depending on another part (as kind keeps its shared names in
// pkg/cluster/constants). A name written in two places drifts; write it here.
package project
