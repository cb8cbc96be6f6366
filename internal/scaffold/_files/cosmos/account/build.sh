#!/bin/sh
# Builds the account service without Maven: compiles src/ into target/classes,
# packs target/account-1.0.0.jar (Main-Class cosmos.account.Main, Class-Path
# h2.jar) and puts H2's JDBC driver beside it as target/h2.jar.
# Works from any directory. Needs a JDK 17 or newer.
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

rm -rf target/classes
mkdir -p target/classes
# shellcheck disable=SC2046 # source file names have no spaces
javac --release 17 -Xlint:all,-serial -Werror -encoding UTF-8 -d target/classes $(find src/main/java -name '*.java' | sort)

printf 'Main-Class: cosmos.account.Main\nClass-Path: h2.jar\n' >target/MANIFEST.MF
rm -f target/account-1.0.0.jar
# A fixed date keeps the jar byte-identical when the sources did not change.
jar --create --file target/account-1.0.0.jar --manifest target/MANIFEST.MF \
	--date 2000-01-01T00:00:00Z -C target/classes .

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
