package cosmos.account;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigDecimal;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The account service of the cosmos example: accounts with balances in an H2
 * database, behind a small HTTP API.
 *
 * <pre>
 * GET  /health                  200 "ok"
 * GET  /version                 the build's version
 * POST /accounts                {"id","owner","balance"} -> 201 account, 409 if it exists
 * GET  /accounts/{id}           200 account, 404
 * POST /accounts/{id}/withdraw  {"amount"} -> 200 account, 404, 409 on insufficient funds
 * POST /accounts/{id}/deposit   {"amount"} -> 200 account, 404
 * </pre>
 */
public final class Main {
    private static final int MAX_BODY = 64 * 1024;
    private static final long DB_WAIT_MILLIS = 60_000;

    private final AccountStore store;

    private Main(AccountStore store) {
        this.store = store;
    }

    /** Starts the service; settings come from the environment (see Settings). */
    public static void main(String[] args) {
        try {
            run(Settings.fromEnv(System.getenv()));
        } catch (Exception e) {
            log("error: " + e.getMessage());
            System.exit(1);
        }
    }

    private static void run(Settings settings) throws Exception {
        log("account " + Version.VERSION + " starting: datasource " + settings.redactedUrl());
        AccountStore store = AccountStore.open(settings, DB_WAIT_MILLIS, Main::log);
        for (AccountStore.Account a : new AccountStore.Account[] {
                new AccountStore.Account("A-1", "alice", 1000),
                new AccountStore.Account("A-2", "bob", 0)}) {
            if (store.seed(a)) {
                log("seeded account " + a.id() + " with balance " + a.balance());
            }
        }
        Main app = new Main(store);
        HttpServer server = HttpServer.create(new InetSocketAddress(settings.port()), 0);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        server.setExecutor(pool);
        server.createContext("/health", ex -> app.handle(ex, app::health));
        server.createContext("/version", ex -> app.handle(ex, app::version));
        server.createContext("/accounts", ex -> app.handle(ex, app::accounts));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("shutting down");
            // stop(0): on Java 17, stop(n) waits the whole n seconds when no
            // request is in flight (JDK-8304065, fixed in 21), and every
            // restart (a save, a rollout) would wait with it.
            server.stop(0);
            pool.shutdown();
            try {
                store.close();
            } catch (Exception e) {
                log("closing the database: " + e.getMessage());
            }
        }));
        server.start();
        log("listening on :" + settings.port());
    }

    private static void log(String msg) {
        System.out.println(Instant.now() + " " + msg);
        System.out.flush();
    }

    /** A response: status and JSON or text body. */
    private record Reply(int status, String contentType, String body) {
        static Reply json(int status, Map<String, ?> m) {
            return new Reply(status, "application/json", Json.write(m) + "\n");
        }

        static Reply text(int status, String s) {
            return new Reply(status, "text/plain; charset=utf-8", s + "\n");
        }

        static Reply error(int status, String msg) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("error", msg);
            return json(status, m);
        }
    }

    /** Thrown by handlers for a 4xx answer. */
    private static final class HttpError extends Exception {
        final int status;

        HttpError(int status, String msg) {
            super(msg);
            this.status = status;
        }
    }

    @FunctionalInterface
    private interface Handler {
        Reply serve(HttpExchange ex) throws Exception;
    }

    private void handle(HttpExchange ex, Handler h) throws IOException {
        Reply r;
        try {
            r = h.serve(ex);
        } catch (HttpError e) {
            r = Reply.error(e.status, e.getMessage());
        } catch (AccountStore.NotFoundException e) {
            r = Reply.error(404, e.getMessage());
        } catch (AccountStore.InsufficientFundsException | AccountStore.AlreadyExistsException e) {
            r = Reply.error(409, e.getMessage());
        } catch (Exception e) {
            log("error serving " + ex.getRequestMethod() + " " + ex.getRequestURI().getPath() + ": " + e);
            r = Reply.error(500, "internal error: " + e.getMessage());
        }
        byte[] body = r.body().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", r.contentType());
        ex.sendResponseHeaders(r.status(), body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
        if (!ex.getRequestURI().getPath().equals("/health")) {
            log(ex.getRequestMethod() + " " + ex.getRequestURI().getPath() + " " + r.status());
        }
    }

    private Reply health(HttpExchange ex) throws HttpError {
        requireMethod(ex, "GET");
        return Reply.text(200, "ok");
    }

    private Reply version(HttpExchange ex) throws HttpError {
        requireMethod(ex, "GET");
        return Reply.text(200, Version.VERSION);
    }

    private Reply accounts(HttpExchange ex) throws Exception {
        String path = ex.getRequestURI().getPath();
        String rest = path.substring("/accounts".length());
        if (rest.isEmpty() || rest.equals("/")) {
            requireMethod(ex, "POST");
            return create(ex);
        }
        if (!rest.startsWith("/")) {
            throw new HttpError(404, "no such path " + path);
        }
        String[] parts = rest.substring(1).split("/", -1);
        String id = parts[0];
        if (id.isEmpty()) {
            throw new HttpError(404, "no such path " + path + ": want /accounts/{id}");
        }
        if (parts.length == 1) {
            requireMethod(ex, "GET");
            return Reply.json(200, toMap(store.find(id).orElseThrow(() -> new AccountStore.NotFoundException(id))));
        }
        if (parts.length == 2 && (parts[1].equals("withdraw") || parts[1].equals("deposit"))) {
            requireMethod(ex, "POST");
            long amount = wholeNumber(readBody(ex), "amount", true);
            if (amount <= 0) {
                throw new HttpError(400, "field \"amount\" must be greater than 0, got " + amount);
            }
            AccountStore.Account a = parts[1].equals("withdraw") ? store.withdraw(id, amount) : store.deposit(id, amount);
            return Reply.json(200, toMap(a));
        }
        throw new HttpError(404, "no such path " + path
                + ": want /accounts/{id}, /accounts/{id}/withdraw or /accounts/{id}/deposit");
    }

    private Reply create(HttpExchange ex) throws Exception {
        Map<String, Object> body = readBody(ex);
        String id = text(body, "id");
        if (id.contains("/") || id.length() > 64) {
            throw new HttpError(400, "field \"id\" must be at most 64 characters without '/'");
        }
        String owner = text(body, "owner");
        long balance = body.containsKey("balance") ? wholeNumber(body, "balance", false) : 0;
        if (balance < 0) {
            throw new HttpError(400, "field \"balance\" must not be negative, got " + balance);
        }
        return Reply.json(201, toMap(store.create(new AccountStore.Account(id, owner, balance))));
    }

    private static Map<String, Object> toMap(AccountStore.Account a) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", a.id());
        m.put("owner", a.owner());
        m.put("balance", a.balance());
        return m;
    }

    private static void requireMethod(HttpExchange ex, String method) throws HttpError {
        if (!ex.getRequestMethod().equals(method)) {
            ex.getResponseHeaders().set("Allow", method);
            throw new HttpError(405, "method " + ex.getRequestMethod() + " not allowed on "
                    + ex.getRequestURI().getPath() + ": use " + method);
        }
    }

    private static Map<String, Object> readBody(HttpExchange ex) throws IOException, HttpError {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (InputStream in = ex.getRequestBody()) {
            byte[] chunk = new byte[8192];
            int n;
            while ((n = in.read(chunk)) > 0) {
                buf.write(chunk, 0, n);
                if (buf.size() > MAX_BODY) {
                    throw new HttpError(413, "request body larger than " + MAX_BODY + " bytes");
                }
            }
        }
        String s = buf.toString(StandardCharsets.UTF_8);
        if (s.isBlank()) {
            throw new HttpError(400, "empty request body: send a JSON object");
        }
        try {
            return Json.parseObject(s);
        } catch (IllegalArgumentException e) {
            throw new HttpError(400, "request body: " + e.getMessage());
        }
    }

    private static String text(Map<String, Object> body, String field) throws HttpError {
        Object v = body.get(field);
        if (!(v instanceof String) || ((String) v).isBlank()) {
            throw new HttpError(400, "field \"" + field + "\" is missing or not a non-empty string");
        }
        return (String) v;
    }

    private static long wholeNumber(Map<String, Object> body, String field, boolean required) throws HttpError {
        Object v = body.get(field);
        if (v == null && !required) {
            return 0;
        }
        if (!(v instanceof BigDecimal)) {
            throw new HttpError(400, "field \"" + field + "\" is missing or not a number");
        }
        try {
            return ((BigDecimal) v).longValueExact();
        } catch (ArithmeticException e) {
            throw new HttpError(400, "field \"" + field + "\" must be a whole number, got " + v);
        }
    }
}
