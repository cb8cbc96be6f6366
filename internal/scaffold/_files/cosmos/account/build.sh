#!/bin/sh
# Builds the account service without Maven: compiles src/ into target/classes,
# packs target/account-1.0.0.jar (Main-Class cosmos.account.Main, Class-Path
# h2.jar) and puts H2's JDBC driver beside it as target/h2.jar.
# Works from any directory. Needs a JDK 17 or newer.
#
# Incremental: only the sources changed since the last build are compiled,
# with every source that names a class of theirs (javac copies constants such
# as Version.VERSION into the classes that use them), until none is added. It
# compiles everything when target/classes is missing, when a source was added,
# removed or renamed, or when build.sh changed; `rm -rf target` forces it too.
# The jar is always packed anew from target/classes, so it is byte-identical
# to a full build's. javac and jar run with the client compiler only
# (-XX:TieredStopAtLevel=1), which spends less time compiling javac itself
# than javac spends on a few sources, and javac with a class data sharing
# archive of its own classes (target/javac.jsa, made by this machine's JDK on
# a full build and again when the JDK changes).
set -eu
cd "$(dirname "$0")"

H2_VERSION=2.1.214
H2_SYSTEM_JAR=/usr/share/java/h2.jar
H2_URL="https://repo1.maven.org/maven2/com/h2database/h2/$H2_VERSION/h2-$H2_VERSION.jar"

for tool in javac jar; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "build.sh: $tool not found: install a JDK 17, e.g. apt-get install -y default-jdk-headless libh2-java" >&2
		exit 1
	fi
done

STAMP=target/classes.built        # touched before each compile that succeeds
SOURCES=target/sources.txt         # the sources of the last build
JAVAC_JSA=target/javac.jsa
mkdir -p target
find src/main/java -name '*.java' | sort >target/sources.now

full=
if [ ! -d target/classes ] || [ ! -f "$STAMP" ] || [ build.sh -nt "$STAMP" ] || ! cmp -s target/sources.now "$SOURCES"; then
	full=yes
	changed=$(cat target/sources.now)
else
	changed=$(find src/main/java -name '*.java' -newer "$STAMP" | sort)
	# Add the sources that name a class of a changed one, until none is added.
	todo=$changed
	while [ -n "$todo" ]; do
		names=$(for f in $todo; do printf ' -e %s' "$(basename "$f" .java)"; done)
		# shellcheck disable=SC2086 # $names is a list of grep options
		users=$(grep -lw $names $(cat target/sources.now) || true)
		todo=$(printf '%s\n' $users | grep -vxF "$(printf '%s\n' $changed)" || true)
		changed=$(printf '%s\n' $changed $todo | sort -u)
	done
fi

# The JDK's javac with an archive of its classes (class data sharing), made
# by a full build when missing or older than the JVM.
jvm=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")/lib/server/libjvm.so
if [ -f "$JAVAC_JSA" ] && [ ! "$jvm" -nt "$JAVAC_JSA" ]; then
	cds=-J-XX:SharedArchiveFile=$JAVAC_JSA
elif [ -n "$full" ]; then
	rm -f "$JAVAC_JSA"
	cds=-J-XX:ArchiveClassesAtExit=$JAVAC_JSA
else
	cds=
fi

if [ -n "$changed" ]; then
	if [ -n "$full" ]; then
		rm -f "$STAMP" # a full build that fails stays full
		rm -rf target/classes
		mkdir -p target/classes
	else
		# The classes of the sources compiled again (nested ones too) go first.
		for f in $changed; do
			c=target/classes/${f#src/main/java/}
			rm -f "${c%.java}.class" "${c%.java}"\$*.class
		done
	fi
	touch target/classes.built.next
	# shellcheck disable=SC2086 # source file names have no spaces
	javac -J-XX:TieredStopAtLevel=1 $cds --release 17 -Xlint:all,-serial -Werror -encoding UTF-8 \
		-d target/classes -cp target/classes $changed
	mv target/classes.built.next "$STAMP"
	mv target/sources.now "$SOURCES"
fi
rm -f target/sources.now

printf 'Main-Class: cosmos.account.Main\nClass-Path: h2.jar\n' >target/MANIFEST.MF
if [ -n "$changed" ] || [ ! -f target/account-1.0.0.jar ]; then
	rm -f target/account-1.0.0.jar
	# A fixed date keeps the jar byte-identical when the sources did not change.
	jar -J-XX:TieredStopAtLevel=1 --create --file target/account-1.0.0.jar --manifest target/MANIFEST.MF \
		--date 2000-01-01T00:00:00Z -C target/classes .
fi

if [ -f "$H2_SYSTEM_JAR" ]; then
	if ! cmp -s "$H2_SYSTEM_JAR" target/h2.jar 2>/dev/null; then
		cp "$H2_SYSTEM_JAR" target/h2.jar
	fi
elif [ ! -s target/h2.jar ]; then
	if ! command -v curl >/dev/null 2>&1; then
		echo "build.sh: H2 driver missing: $H2_SYSTEM_JAR does not exist and curl is not installed;" \
			"install it with apt-get install -y libh2-java (or install curl to download $H2_URL)" >&2
		exit 1
	fi
	if ! curl -fsSL --connect-timeout 10 -o target/h2.jar.part "$H2_URL"; then
		rm -f target/h2.jar.part
		echo "build.sh: H2 driver missing: $H2_SYSTEM_JAR does not exist and downloading $H2_URL failed;" \
			"install it with apt-get install -y libh2-java" >&2
		exit 1
	fi
	mv target/h2.jar.part target/h2.jar
fi

echo "built target/account-1.0.0.jar and target/h2.jar"
