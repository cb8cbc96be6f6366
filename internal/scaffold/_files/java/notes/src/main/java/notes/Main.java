package notes;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The notes service: notes in an H2 database, behind a small HTTP API served
 * by the JDK's own HTTP server (no framework, no Maven).
 *
 * <pre>
 * GET  /health   200 "ok"
 * GET  /version  the build's version (Version.java)
 * GET  /notes    200 [{"id","text"}, ...]
 * POST /notes    the request body is the note's text: 201 {"id","text"}
 * </pre>
 *
 * Settings come from the environment (devenv passes the service's ConfigMap
 * and Secret as env): PORT (8080), DATASOURCE_URL, DATASOURCE_USERNAME and
 * DATASOURCE_PASSWORD (never logged).
 */
public final class Main {
    private static final int MAX_BODY = 4096;
    private static final long DB_WAIT_MILLIS = 60_000;

    private Main() {
    }

    /** Starts the service. */
    public static void main(String[] args) {
        try {
            run(System.getenv());
        } catch (Exception e) {
            log("error: " + e.getMessage());
            System.exit(1);
        }
    }

    private static void run(Map<String, String> env) throws Exception {
        int port = Integer.parseInt(env.getOrDefault("PORT", "8080").trim());
        String url = env.getOrDefault("DATASOURCE_URL", "jdbc:h2:mem:notes;DB_CLOSE_DELAY=-1");
        log("notes " + Version.VERSION + " starting: datasource " + Notes.redact(url));
        Notes store = Notes.open(url, env.getOrDefault("DATASOURCE_USERNAME", "sa"),
                env.getOrDefault("DATASOURCE_PASSWORD", ""), DB_WAIT_MILLIS, Main::log);

        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        server.setExecutor(pool);
        server.createContext("/health", ex -> reply(ex, 200, "text/plain", "ok"));
        server.createContext("/version", ex -> reply(ex, 200, "text/plain", Version.VERSION));
        server.createContext("/notes", ex -> notes(ex, store));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("shutting down");
            server.stop(1);
            pool.shutdown();
            try {
                store.close();
            } catch (Exception e) {
                log("closing the database: " + e.getMessage());
            }
        }));
        server.start();
        log("listening on :" + port);
    }

    private static void notes(HttpExchange ex, Notes store) throws IOException {
        try {
            switch (ex.getRequestMethod()) {
                case "GET" -> {
                    List<Notes.Note> all = store.list();
                    StringBuilder b = new StringBuilder("[");
                    for (int i = 0; i < all.size(); i++) {
                        b.append(i == 0 ? "" : ",").append(json(all.get(i)));
                    }
                    reply(ex, 200, "application/json", b.append("]").toString());
                }
                case "POST" -> {
                    byte[] body;
                    try (InputStream in = ex.getRequestBody()) {
                        body = in.readNBytes(MAX_BODY + 1);
                    }
                    String text = new String(body, StandardCharsets.UTF_8).strip();
                    if (text.isEmpty() || body.length > MAX_BODY) {
                        reply(ex, 400, "application/json",
                                "{\"error\":\"send the note's text (1 to " + MAX_BODY + " bytes) as the request body\"}");
                        return;
                    }
                    Notes.Note n = store.add(text);
                    log("added note " + n.id());
                    reply(ex, 201, "application/json", json(n));
                }
                default -> {
                    ex.getResponseHeaders().set("Allow", "GET, POST");
                    reply(ex, 405, "application/json", "{\"error\":\"use GET or POST\"}");
                }
            }
        } catch (Exception e) {
            log("error serving " + ex.getRequestMethod() + " /notes: " + e);
            reply(ex, 500, "application/json", "{\"error\":" + quote(String.valueOf(e.getMessage())) + "}");
        }
    }

    private static String json(Notes.Note n) {
        return "{\"id\":" + n.id() + ",\"text\":" + quote(n.text()) + "}";
    }

    /** A JSON string literal. */
    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    private static void reply(HttpExchange ex, int status, String contentType, String body) throws IOException {
        byte[] b = (body + "\n").getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", contentType + "; charset=utf-8");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    private static void log(String msg) {
        System.out.println(Instant.now() + " " + msg);
        System.out.flush();
    }
}
