# devenv's H2 database server: Debian's libh2-java (H2 2.1.214) on devenv's
# JRE stand-in, listening for TCP clients on 9092 with databases under /data.
ARG BASE
FROM ${BASE}
RUN set -eux; \
    mkdir -p /usr/share/man/man1; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libh2-java; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*; \
    test -f /usr/share/java/h2.jar; \
    useradd --system --uid 1000 --home-dir /data --create-home h2
ENV H2_JAR=/usr/share/java/h2.jar
USER h2
WORKDIR /data
VOLUME /data
EXPOSE 9092
# -ifNotExists lets clients create databases remotely (jdbc:h2:tcp://h2:9092/mem:account).
ENTRYPOINT ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", "/usr/share/java/h2.jar", "org.h2.tools.Server", "-tcp", "-tcpAllowOthers", "-tcpPort", "9092", "-ifNotExists", "-baseDir", "/data"]
