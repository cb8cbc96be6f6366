// Package render turns a loaded devenv.yaml into the Kubernetes objects
// devenv applies: the Namespace, each service's ConfigMap and Secret, the
// selector-less Services and endpoints of the containers outside the cluster
// (Kafka, an H2 server), and each service's Service and Deployment.
//
// It resolves the ${...} references in config values, reports problems with
// the file and line they were written on, and never prints a secret unless
// asked to.
package render
