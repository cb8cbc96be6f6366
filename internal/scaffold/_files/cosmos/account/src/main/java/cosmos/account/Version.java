package cosmos.account;

/** The build's version, reported by GET /version so tests can tell builds apart. */
final class Version {
    static final String VERSION = "v1";

    private Version() {
    }
}
