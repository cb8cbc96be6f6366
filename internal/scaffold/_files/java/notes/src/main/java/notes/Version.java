package notes;

/** The build's version, answered by GET /version: change it, save, and watch the running service update. */
final class Version {
    static final String VERSION = "v1";

    private Version() {
    }
}
