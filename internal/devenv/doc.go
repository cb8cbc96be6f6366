// Package devenv is the orchestrator: the one place that knows every part.
// Up creates the cluster, starts the external containers (Kafka, H2) on the
// kind network, builds the services' images, and applies everything; Down
// removes what Up created; Status reports on each part. The parts themselves
// (cluster, kafka, h2, watch, templates, internal/build, internal/images)
// never import each other.
package devenv
