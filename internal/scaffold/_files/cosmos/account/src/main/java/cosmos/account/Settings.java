package cosmos.account;

import java.util.Map;

/**
 * The service's settings, read from environment variables. In the cluster they
 * come from the ConfigMap and Secret named account: key datasource.url becomes
 * env DATASOURCE_URL, and so on.
 */
record Settings(int port, String url, String username, String password, String driverClassName) {

    static final String DEFAULT_URL = "jdbc:h2:mem:account;DB_CLOSE_DELAY=-1";

    /** Reads the settings; a bad value is an IllegalArgumentException naming the variable. */
    static Settings fromEnv(Map<String, String> env) {
        String p = env.getOrDefault("PORT", "").trim();
        int port = 8080;
        if (!p.isEmpty()) {
            try {
                port = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                port = -1;
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("PORT=" + p + " is not a port number: set PORT to 1-65535 or unset it for 8080");
            }
        }
        return new Settings(port,
                orDefault(env.get("DATASOURCE_URL"), DEFAULT_URL),
                orDefault(env.get("DATASOURCE_USERNAME"), "sa"),
                orDefault(env.get("DATASOURCE_PASSWORD"), ""),
                orDefault(env.get("DATASOURCE_DRIVER_CLASS_NAME"), "org.h2.Driver"));
    }

    private static String orDefault(String v, String def) {
        return v == null || v.isBlank() ? def : v.trim();
    }

    /** The JDBC URL with any USER= or PASSWORD= setting hidden, safe to log. */
    String redactedUrl() {
        return url.replaceAll("(?i)(;\\s*(PASSWORD|USER)\\s*=)[^;]*", "$1***");
    }

    @Override
    public String toString() {
        return "Settings[port=" + port + ", url=" + redactedUrl() + ", driver=" + driverClassName + "]";
    }
}
