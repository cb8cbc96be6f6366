// Package java describes two stand-in images built on devenv's Debian base
// without any registry: a Java 17 runtime (devenv.local/jre:17) that replaces
// eclipse-temurin, openjdk and amazoncorretto JRE bases in service
// Dockerfiles, and an H2 database server (devenv.local/h2:2.1.214) that the h2
// package runs by default.
//
// Both are built through the Docker API (ImageBuild) from a Dockerfile kept in
// this package; their recipe is that Dockerfile, so editing it rebuilds them.
package java
