// Package devenv is the orchestrator: the one place that knows every part.
// Up creates the cluster, starts the external containers (Kafka, H2) on the
// kind network, builds the services' images, and applies everything; Down
// removes what Up created; Status reports on each part.
//
// Imports run one way (checked with `go list -f '{{.Imports}}'`):
//
//	cmd/devenv -> internal/cli -> internal/devenv (+ internal/render beside it)
//	  -> peers:  cluster, kafka, h2, watch, internal/build, internal/images
//	  -> leaves: internal/config, templates, project, internal/dockerx,
//	             internal/execx, internal/log, internal/dockerfile,
//	             internal/dirs, internal/termx (and internal/fakebroker,
//	             internal/supervise, built into images)
//
// No peer imports another peer: what two parts share (label keys, default
// images, the kind network's name, the project's identity) lives in the
// leaf package project.
package devenv
