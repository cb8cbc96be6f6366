package notes;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Notes kept in a JDBC database (an H2 server in the cluster). One connection
 * is held for the life of the process and reopened when it goes bad; every
 * method is synchronized on the store.
 */
final class Notes implements AutoCloseable {

    /** One note. */
    record Note(long id, String text) {
    }

    private final String url;
    private final String user;
    private final String password;
    private Connection conn;

    private Notes(String url, String user, String password) {
        this.url = url;
        this.user = user;
        this.password = password;
    }

    /**
     * Opens the store, waiting up to waitMillis for the database to accept a
     * connection (the H2 server may still be starting), and creates the table.
     */
    static Notes open(String url, String user, String password, long waitMillis, Consumer<String> log)
            throws SQLException, InterruptedException {
        Notes store = new Notes(url, user, password);
        long deadline = System.currentTimeMillis() + waitMillis;
        boolean said = false;
        while (true) {
            try {
                store.conn = store.connect();
                break;
            } catch (SQLException e) {
                if (System.currentTimeMillis() >= deadline) {
                    throw new SQLException("connecting to the database at " + redact(url) + ": gave up after "
                            + waitMillis / 1000 + "s: " + e.getMessage(), e);
                }
                if (!said) {
                    log.accept("waiting up to " + waitMillis / 1000 + "s for the database at " + redact(url)
                            + " (" + e.getMessage() + ")");
                    said = true;
                }
            }
            Thread.sleep(1000);
        }
        try (Statement st = store.conn.createStatement()) {
            st.execute("CREATE TABLE IF NOT EXISTS notes ("
                    + "id BIGINT AUTO_INCREMENT PRIMARY KEY, text VARCHAR(4096) NOT NULL)");
        }
        return store;
    }

    /** The JDBC URL with any USER= or PASSWORD= setting hidden, safe to log. */
    static String redact(String url) {
        return url.replaceAll("(?i)(;\\s*(PASSWORD|USER)\\s*=)[^;]*", "$1***");
    }

    private Connection connect() throws SQLException {
        return DriverManager.getConnection(url, user, password);
    }

    private synchronized Connection conn() throws SQLException {
        if (conn == null || !conn.isValid(2)) {
            if (conn != null) {
                try {
                    conn.close();
                } catch (SQLException ignored) {
                    // the old connection is broken; a new one replaces it
                }
            }
            conn = connect();
        }
        return conn;
    }

    /** Adds a note and returns it with its id. */
    synchronized Note add(String text) throws SQLException {
        try (PreparedStatement st = conn().prepareStatement("INSERT INTO notes (text) VALUES (?)",
                Statement.RETURN_GENERATED_KEYS)) {
            st.setString(1, text);
            st.executeUpdate();
            try (ResultSet keys = st.getGeneratedKeys()) {
                keys.next();
                return new Note(keys.getLong(1), text);
            }
        }
    }

    /** Every note, oldest first. */
    synchronized List<Note> list() throws SQLException {
        List<Note> out = new ArrayList<>();
        try (PreparedStatement st = conn().prepareStatement("SELECT id, text FROM notes ORDER BY id");
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                out.add(new Note(rs.getLong(1), rs.getString(2)));
            }
        }
        return out;
    }

    @Override
    public synchronized void close() throws SQLException {
        if (conn != null) {
            conn.close();
        }
    }
}
