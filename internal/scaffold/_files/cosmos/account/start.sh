#!/bin/sh
# Starts the account service in its image (ENTRYPOINT) with a class data
# sharing archive (AppCDS) of the JDK's and H2's classes, which the JVM maps
# instead of loading and checking those classes one by one: a start takes
# about half the CPU (it restarts on every save, in a pod of half a core).
#
# The archive must come from the image's own JVM, so this container makes
# it: the first start runs as usual and lists the classes it loads
# (-XX:DumpLoadedClassList); once the service listens and has answered its
# first requests, a low-priority background job dumps the JDK and H2 classes
# of that list into $CDS_DIR and renames the archive into place when the JVM
# has checked it. Later starts in this container (devenv restarts the
# service in place on a save) use it. The archive holds no class of the
# account jar, which changes on every save: it is dumped with only h2.jar on
# the class path, and the service runs with -cp h2.jar:account-1.0.0.jar
# (the dump's class path plus one jar, as AppCDS allows) instead of -jar.
#
# Nothing here can stop the service from starting: without a folder to write
# to, the service runs without an archive; a dump that fails leaves nothing
# behind (its log stays in $CDS_DIR/dump.log); an archive the JVM cannot use
# is ignored (-Xshare:auto, the default). exec hands the shell's process to
# the JVM, so signals (a restart's or the pod's SIGTERM) reach it, and the
# background job ends, and removes what it wrote, when the JVM does.
#
# APP_DIR (/app) and CDS_DIR (/tmp/account-cds) can be set to try it
# elsewhere: APP_DIR=target CDS_DIR=/tmp/x sh start.sh
set -u

APP_DIR=${APP_DIR:-/app}
CDS_DIR=${CDS_DIR:-/tmp/account-cds}
APP_JAR=$APP_DIR/account-1.0.0.jar
H2_JAR=$APP_DIR/h2.jar
MAIN=cosmos.account.Main
APP_CLASSES=cosmos/account/ # the account jar's classes, left out of the archive
# The dump uses the service's heap size too: a different one can change how
# the JVM encodes object pointers, and the archive's objects must then be
# moved on every start.
HEAP=-Xmx256m
# -XX:TieredStopAtLevel=1: the client compiler only, which starts the
# service with less CPU.
set -- -Djava.security.egd=file:/dev/./urandom "$HEAP" -XX:TieredStopAtLevel=1 \
	-cp "$H2_JAR:$APP_JAR" "$MAIN"

# The archive is named after h2.jar's checksum: a new h2.jar gets a new one.
key=$(cksum <"$H2_JAR" 2>/dev/null | tr ' ' '-')
jsa=$CDS_DIR/jdk-h2-$key.jsa
if [ -n "$key" ] && [ -f "$jsa" ]; then
	exec java -XX:SharedArchiveFile="$jsa" "$@"
fi
# The folder is this user's alone (the JVM maps the archive into itself).
if [ -z "$key" ] || ! (umask 077 && mkdir -p "$CDS_DIR") 2>/dev/null || [ ! -O "$CDS_DIR" ] || [ ! -w "$CDS_DIR" ]; then
	exec java "$@"
fi

jvm=$$ # the JVM's PID, after exec
list=$CDS_DIR/classes.$jvm.lst
(
	snap=$list.snap
	tmp=$jsa.$jvm.tmp
	dumper=
	log=$CDS_DIR/dump.log
	# clean removes what this job wrote but did not finish.
	clean() {
		rm -f "$list" "$snap" "$tmp"
	}
	# stop ends the job when the JVM has ended: a restart's new JVM makes
	# its own archive, and this one must not take its CPU.
	stop() {
		if [ -n "$dumper" ]; then
			# SIGKILL: nothing of the dump is kept, and it ends at once.
			kill -9 "$dumper" 2>/dev/null
			wait "$dumper"
		fi
		clean
		rm -f "$log"
		exit 0
	}
	# jvm_alive waits a little and reports whether the JVM still runs.
	jvm_alive() {
		sleep 0.2 2>/dev/null || sleep 1
		kill -0 "$jvm" 2>/dev/null
	}
	trap stop TERM INT HUP
	# Wait until the service listens (it may wait up to a minute for its
	# database), then a few seconds more for its first requests (probes,
	# devenv's check), whose classes belong in the archive too.
	port=$(printf '%04X' "${PORT:-8080}")
	i=0
	until grep -qE "^ *[0-9]+: [0-9A-F]+:$port [0-9A-F]+:0000 0A " /proc/net/tcp6 /proc/net/tcp 2>/dev/null; do
		jvm_alive || stop
		i=$((i + 1))
		[ "$i" -gt 1500 ] && stop # about five minutes: give up
	done
	i=0
	while [ "$i" -lt 25 ]; do
		jvm_alive || stop
		i=$((i + 1))
	done
	# The lines the JVM has written whole, without the account jar's classes.
	n=$(wc -l <"$list") || stop
	head -n "$n" "$list" | grep -v "$APP_CLASSES" >"$snap"
	nice -n 19 java "$HEAP" -XX:TieredStopAtLevel=1 -Xshare:dump -XX:SharedClassListFile="$snap" \
		-XX:SharedArchiveFile="$tmp" -cp "$H2_JAR" >"$log" 2>&1 &
	dumper=$!
	while kill -0 "$dumper" 2>/dev/null; do
		jvm_alive || stop
	done
	if wait "$dumper" && nice -n 19 java "$HEAP" -Xshare:on -XX:SharedArchiveFile="$tmp" -cp "$H2_JAR" -version \
		>>"$log" 2>&1 && kill -0 "$jvm" 2>/dev/null && mv -f "$tmp" "$jsa"; then
		echo "start.sh: class data sharing archive $jsa written: the next start uses it"
		rm -f "$log"
	else
		echo "start.sh: making a class data sharing archive failed (see $log); the next start tries again"
	fi
	dumper=
	clean
) </dev/null &
exec java -XX:DumpLoadedClassList="$list" "$@"
