package cosmos.account;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Accounts kept in a JDBC database (H2 by default). One connection is held for
 * the life of the process: it keeps an in-memory H2 database alive even when its
 * URL lacks DB_CLOSE_DELAY=-1, and it is reopened if it goes bad. Every method
 * is synchronized on the store, and every change is one SQL statement, so a
 * withdrawal can never overdraw an account.
 */
final class AccountStore implements AutoCloseable {

    /** One account. Balances are whole units. */
    record Account(String id, String owner, long balance) {
    }

    /** The account does not exist. */
    static final class NotFoundException extends Exception {
        NotFoundException(String id) {
            super("account " + id + " not found");
        }
    }

    /** A withdrawal larger than the balance. */
    static final class InsufficientFundsException extends Exception {
        InsufficientFundsException(String id, long amount, long balance) {
            super("insufficient funds: account " + id + " has " + balance + ", cannot withdraw " + amount);
        }
    }

    /** An account with this id exists already. */
    static final class AlreadyExistsException extends Exception {
        AlreadyExistsException(String id) {
            super("account " + id + " already exists");
        }
    }

    private final Settings settings;
    private Connection conn;

    private AccountStore(Settings settings) {
        this.settings = settings;
    }

    /**
     * Opens the store, waiting up to waitMillis for the database to accept a
     * connection (an H2 TCP server may still be starting), and creates the table.
     */
    static AccountStore open(Settings settings, long waitMillis, Consumer<String> log) throws Exception {
        if (settings.driverClassName() != null && !settings.driverClassName().isEmpty()) {
            try {
                Class.forName(settings.driverClassName());
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException("DATASOURCE_DRIVER_CLASS_NAME=" + settings.driverClassName()
                        + ": class not found; h2.jar must sit next to account-1.0.0.jar (run build.sh)", e);
            }
        }
        AccountStore store = new AccountStore(settings);
        long deadline = System.currentTimeMillis() + waitMillis;
        SQLException last = null;
        boolean said = false;
        while (true) {
            try {
                store.conn = store.connect();
                break;
            } catch (SQLException e) {
                last = e;
            }
            if (System.currentTimeMillis() >= deadline) {
                throw new IllegalStateException("connecting to the database at " + settings.redactedUrl()
                        + ": gave up after " + waitMillis / 1000 + "s; last error: " + last.getMessage(), last);
            }
            if (!said) {
                log.accept("waiting up to " + waitMillis / 1000 + "s for the database at " + settings.redactedUrl()
                        + " (" + last.getMessage() + ")");
                said = true;
            }
            Thread.sleep(1000);
        }
        try (PreparedStatement st = store.conn.prepareStatement(
                "CREATE TABLE IF NOT EXISTS accounts ("
                        + "id VARCHAR(64) PRIMARY KEY, owner VARCHAR(255) NOT NULL, balance BIGINT NOT NULL)")) {
            st.execute();
        }
        return store;
    }

    private Connection connect() throws SQLException {
        return DriverManager.getConnection(settings.url(), settings.username(), settings.password());
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

    /** Creates the account unless one with its id exists; returns whether it was created. */
    synchronized boolean seed(Account a) throws SQLException {
        if (find(a.id()).isPresent()) {
            return false;
        }
        try {
            create(a);
            return true;
        } catch (AlreadyExistsException e) {
            return false;
        }
    }

    /** Creates a new account. */
    synchronized Account create(Account a) throws SQLException, AlreadyExistsException {
        try (PreparedStatement st = conn().prepareStatement(
                "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)")) {
            st.setString(1, a.id());
            st.setString(2, a.owner());
            st.setLong(3, a.balance());
            st.executeUpdate();
            return a;
        } catch (SQLException e) {
            if ("23505".equals(e.getSQLState())) {
                throw new AlreadyExistsException(a.id());
            }
            throw e;
        }
    }

    /** Finds an account by id. */
    synchronized Optional<Account> find(String id) throws SQLException {
        try (PreparedStatement st = conn().prepareStatement(
                "SELECT id, owner, balance FROM accounts WHERE id = ?")) {
            st.setString(1, id);
            try (ResultSet rs = st.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                return Optional.of(new Account(rs.getString(1), rs.getString(2), rs.getLong(3)));
            }
        }
    }

    /** Takes amount from the account; fails without change if the balance is too small. */
    synchronized Account withdraw(String id, long amount)
            throws SQLException, NotFoundException, InsufficientFundsException {
        try (PreparedStatement st = conn().prepareStatement(
                "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?")) {
            st.setLong(1, amount);
            st.setString(2, id);
            st.setLong(3, amount);
            if (st.executeUpdate() == 0) {
                Account a = find(id).orElseThrow(() -> new NotFoundException(id));
                throw new InsufficientFundsException(id, amount, a.balance());
            }
        }
        return find(id).orElseThrow(() -> new NotFoundException(id));
    }

    /** Adds amount to the account. */
    synchronized Account deposit(String id, long amount) throws SQLException, NotFoundException {
        try (PreparedStatement st = conn().prepareStatement(
                "UPDATE accounts SET balance = balance + ? WHERE id = ?")) {
            st.setLong(1, amount);
            st.setString(2, id);
            if (st.executeUpdate() == 0) {
                throw new NotFoundException(id);
            }
        }
        return find(id).orElseThrow(() -> new NotFoundException(id));
    }

    @Override
    public synchronized void close() throws SQLException {
        if (conn != null) {
            conn.close();
            conn = null;
        }
    }
}
