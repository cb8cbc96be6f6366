# devenv's stand-in for eclipse-temurin:17-jre (and openjdk / amazoncorretto
# JRE bases): Debian's OpenJDK 17 headless runtime on devenv's Debian base.
# Laid out like eclipse-temurin: JAVA_HOME=/opt/java/openjdk, java on PATH.
ARG BASE
FROM ${BASE}
# The base has no /usr/share/man; openjdk's postinst links its man pages there.
RUN set -eux; \
    mkdir -p /usr/share/man/man1; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends default-jre-headless; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*; \
    home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"; \
    mkdir -p /opt/java; \
    ln -s "$home" /opt/java/openjdk; \
    java -version
ENV JAVA_HOME=/opt/java/openjdk \
    LANG=C.UTF-8
CMD ["bash"]
