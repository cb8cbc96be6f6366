// Package examples holds the example services devenv runs (under cosmos/) and,
// in its tests, the checks that they build and work on this machine: the Java
// account service against H2, and the Go transfermoney service against a real
// Kafka protocol peer (kfake). The services themselves are not Go packages of
// this module: account is Java, and transfermoney is a module of its own.
package examples
