// An example receiver of a specialist procedure in Java 17 with BouncyCastle (Debian:
// libbcpkix-java), written from docs/vendors.md alone: HTTP push, profile `cms`.
//
// For each POST of the hub: de-duplicate on the message id; decrypt the CMS
// AuthEnvelopedData with the procedure's key; verify the hub's CMS signature, the signer
// chained to the CA, valid now, and pinned to the hub's certificate; validate the XML
// against the schema the hub publishes (GET /api/v1/schemas); answer with a signed
// receipt (accept, or reject naming the problem); later send a signed decision.
//
//   java -cp /usr/share/java/bcprov.jar:/usr/share/java/bcpkix.jar:/usr/share/java/bcutil.jar \
//     examples/receivers/java/Receiver.java --hub http://127.0.0.1:8080 \
//     --procedure dresden-maengel --data-dir demo-data --listen 127.0.0.1:9202 --path /eingang

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.FileReader;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.XMLConstants;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.SchemaFactory;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cms.CMSAuthEnvelopedData;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.cms.jcajce.JceKeyAgreeEnvelopedRecipient;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;

public class Receiver {
    static String hub, procedure;
    static X509Certificate ca, hubCertificate, signingCertificate;
    static PrivateKey key, signingKey;
    static String token;
    /** The signed receipt of every message seen (a real system keeps them in its database). */
    static final Map<String, byte[]> answers = new ConcurrentHashMap<>();
    /** Decisions to send: {message id, application id}, until a hub took them. */
    static final List<String[]> pending = new CopyOnWriteArrayList<>();

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) options.put(args[i], args[i + 1]);
        hub = options.get("--hub").replaceAll("/$", "");
        procedure = options.get("--procedure");
        Path pki = Path.of(options.get("--data-dir"), "pki");
        ca = certificate(pki.resolve("ca.crt"));
        hubCertificate = certificate(pki.resolve("hub.crt"));
        key = privateKey(pki.resolve("procedures/" + procedure + ".key"));
        signingCertificate = certificate(pki.resolve("procedures/" + procedure + "-signatur.crt"));
        signingKey = privateKey(pki.resolve("procedures/" + procedure + "-signatur.key"));
        token = Files.readString(Path.of(options.get("--data-dir"), "procedure-tokens", procedure)).trim();
        String[] listen = options.getOrDefault("--listen", "127.0.0.1:9202").split(":");
        HttpServer server = HttpServer.create(new InetSocketAddress(listen[0], Integer.parseInt(listen[1])), 64);
        server.createContext(options.getOrDefault("--path", "/eingang"), Receiver::receive);
        server.start();
        log("receiving over HTTP on " + String.join(":", listen));
        while (true) {
            sendDecisions();
            Thread.sleep(300);
        }
    }

    static void log(String line) {
        // Ids and outcomes only: never the content of an application.
        System.err.println(Instant.now() + " " + line);
    }

    static X509Certificate certificate(Path path) throws Exception {
        try (InputStream in = Files.newInputStream(path)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    static PrivateKey privateKey(Path path) throws Exception {
        try (PEMParser parser = new PEMParser(new FileReader(path.toFile()))) {
            Object pem = parser.readObject();
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter().setProvider("BC");
            if (pem instanceof PEMKeyPair pair) return converter.getKeyPair(pair).getPrivate();
            return converter.getPrivateKey((PrivateKeyInfo) pem);
        }
    }

    static void receive(HttpExchange exchange) {
        try (exchange) {
            String length = exchange.getRequestHeaders().getFirst("Content-Length");
            if (length == null || Long.parseLong(length) > 16L << 20) {
                exchange.sendResponseHeaders(413, -1);
                return;
            }
            byte[] body = exchange.getRequestBody().readAllBytes();
            String messageType = exchange.getRequestHeaders().getFirst("X-Kopplung-Message-Type");
            byte[] receipt;
            try {
                receipt = handle(exchange.getRequestHeaders().getFirst("Idempotency-Key"), messageType, body);
            } catch (SecurityException refused) {
                log("message refused: " + refused.getMessage());
                exchange.sendResponseHeaders(400, -1);
                return;
            }
            exchange.getResponseHeaders().set("Content-Type", "application/pkcs7-mime; smime-type=signed-data");
            exchange.sendResponseHeaders(200, receipt.length);
            exchange.getResponseBody().write(receipt);
        } catch (Exception e) {
            log("try again later: " + e);
            try {
                exchange.getResponseHeaders().set("Retry-After", "5");
                exchange.sendResponseHeaders(503, -1);
            } catch (Exception ignored) {
                // The connection is gone; the hub tries again.
            }
        }
    }

    /** The signed receipt for a message; a message seen before gets the same one. */
    static synchronized byte[] handle(String messageId, String messageType, byte[] sealed) throws Exception {
        byte[] earlier = answers.get(messageId);
        if (earlier != null) return earlier;
        byte[] xml = open(sealed);
        String text = new String(xml, StandardCharsets.UTF_8);
        // The ids come from the signed XML, not from the unsigned headers.
        String signedMessageId = between(text, "<nachrichtenUUID>", "</nachrichtenUUID>");
        String applicationId = between(text, "<antragsID>", "</antragsID>");
        String problem = schemaProblem(xml, messageType);
        byte[] receipt;
        if (problem == null) {
            receipt = sign(event(signedMessageId, applicationId, "accept", ""));
            pending.add(new String[] {signedMessageId, applicationId});
        } else {
            receipt = sign(event(signedMessageId, applicationId, "reject",
                    ",\"problems\":[{\"type\":\"" + problem + "\",\"title\":\"Nachricht abgelehnt\"}]"));
        }
        answers.put(messageId, receipt);
        log("message taken message_id=" + signedMessageId + " event=" + (problem == null ? "accept" : "reject"));
        return receipt;
    }

    /** Decrypts and verifies; throws SecurityException for what is not the hub's. */
    static byte[] open(byte[] sealed) throws Exception {
        byte[] signed;
        try {
            CMSAuthEnvelopedData envelope = new CMSAuthEnvelopedData(sealed);
            RecipientInformation recipient = envelope.getRecipientInfos().getRecipients().iterator().next();
            signed = recipient.getContent(new JceKeyAgreeEnvelopedRecipient(key).setProvider("BC"));
        } catch (Exception e) {
            throw new SecurityException("cannot decrypt: " + e.getMessage());
        }
        try {
            CMSSignedData data = new CMSSignedData(signed);
            SignerInformation signer = data.getSignerInfos().getSigners().iterator().next();
            @SuppressWarnings("unchecked")
            X509CertificateHolder holder = (X509CertificateHolder) data.getCertificates().getMatches(signer.getSID()).iterator().next();
            if (!holder.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider("BC").build(ca)))
                throw new SecurityException("the signer is not certified by the CA");
            if (!holder.isValidOn(new Date())) throw new SecurityException("the signer's certificate is not valid now");
            if (!Arrays.equals(holder.getEncoded(), hubCertificate.getEncoded()))
                throw new SecurityException("signed by someone else than the hub");
            if (!signer.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(holder)))
                throw new SecurityException("the signature does not verify");
            return (byte[]) data.getSignedContent().getContent();
        } catch (SecurityException e) {
            throw e;
        } catch (Exception e) {
            throw new SecurityException("cannot verify: " + e.getMessage());
        }
    }

    /** The problem type if the XML does not validate against its published schema. */
    static String schemaProblem(byte[] xml, String messageType) throws Exception {
        String listing = new String(fetch("/api/v1/schemas"), StandardCharsets.UTF_8);
        int at = listing.indexOf("\"message_type\":\"" + messageType + "\"");
        if (messageType == null || at < 0) return "urn:example:problem:unknown-message-type";
        Matcher schema = Pattern.compile("\"schema\":\"([^\"]+)\"").matcher(listing);
        if (!schema.find(at)) return "urn:example:problem:unknown-message-type";
        // Relative imports resolve against the hub's URL of the schema.
        URL url = new URL(hub + "/api/v1/schemas/" + schema.group(1));
        try {
            SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI).newSchema(url)
                    .newValidator().validate(new StreamSource(new ByteArrayInputStream(xml)));
            return null;
        } catch (org.xml.sax.SAXException invalid) {
            return "urn:example:problem:schema";
        }
    }

    static String event(String messageId, String applicationId, String kind, String more) {
        // The receipt id follows from message and event: a retry is the same receipt.
        String receiptId = UUID.nameUUIDFromBytes((procedure + "/" + messageId + "/" + kind).getBytes(StandardCharsets.UTF_8)).toString();
        return "{\"receipt_id\":\"" + receiptId + "\",\"procedure\":\"" + procedure + "\",\"message_id\":\"" + messageId
                + "\",\"application_id\":\"" + applicationId + "\",\"event\":\"" + kind + "\",\"issued_at\":\""
                + Instant.now().truncatedTo(ChronoUnit.SECONDS) + "\"" + more + "}";
    }

    static byte[] sign(String json) throws Exception {
        CMSSignedDataGenerator generator = new CMSSignedDataGenerator();
        generator.addSignerInfoGenerator(new JcaSignerInfoGeneratorBuilder(
                new JcaDigestCalculatorProviderBuilder().setProvider("BC").build())
                .build(new JcaContentSignerBuilder("SHA256withECDSA").setProvider("BC").build(signingKey), signingCertificate));
        generator.addCertificates(new JcaCertStore(List.of(signingCertificate)));
        return generator.generate(new CMSProcessableByteArray(json.getBytes(StandardCharsets.UTF_8)), true).getEncoded();
    }

    static void sendDecisions() {
        for (String[] ids : new ArrayList<>(pending)) {
            // Enough for a service that takes any PDF; one that demands PDF/A (docs/vendors.md,
            // "PDF/A decisions") refuses it: send your document generator's PDF/A there.
            String pdf = Base64.getEncoder().encodeToString("%PDF-1.4\n%%EOF\n".getBytes(StandardCharsets.US_ASCII));
            try {
                byte[] decision = sign(event(ids[0], ids[1], "decision",
                        ",\"message\":\"Ihr Anliegen wurde bearbeitet.\",\"document\":{\"filename\":\"bescheid.pdf\","
                                + "\"media_type\":\"application/pdf\",\"content_base64\":\"" + pdf + "\"}"));
                HttpURLConnection post = (HttpURLConnection) new URL(hub + "/api/v1/procedures/" + procedure + "/events").openConnection();
                post.setRequestMethod("POST");
                post.setDoOutput(true);
                post.setRequestProperty("Content-Type", "application/pkcs7-mime");
                post.setRequestProperty("Authorization", "Bearer " + token);
                post.getOutputStream().write(decision);
                int status = post.getResponseCode();
                InputStream answer = status < 400 ? post.getInputStream() : post.getErrorStream();
                String body = answer == null ? "" : new String(answer.readAllBytes(), StandardCharsets.UTF_8);
                boolean taken = status / 100 == 2 || (status == 409 && !body.contains("event-out-of-order"));
                boolean later = status == 409 || status == 403 || status == 404 || status == 408
                        || status == 429 || status >= 500;
                if (taken) {
                    pending.remove(ids);
                    log("decision sent message_id=" + ids[0]);
                } else if (later) {
                    log("decision not taken yet message_id=" + ids[0] + " status=" + status);
                } else {
                    // Refused for good: sending again will not help. Keep it for a person.
                    pending.remove(ids);
                    log("ERROR decision refused, kept aside message_id=" + ids[0] + " status=" + status);
                }
            } catch (Exception e) {
                log("hub not reachable: " + e.getMessage());
            }
        }
    }

    static byte[] fetch(String path) throws Exception {
        HttpURLConnection get = (HttpURLConnection) new URL(hub + path).openConnection();
        try (InputStream in = get.getInputStream()) {
            return in.readAllBytes();
        }
    }

    static String between(String text, String start, String end) {
        int from = text.indexOf(start);
        if (from < 0) throw new SecurityException("no " + start);
        from += start.length();
        return text.substring(from, text.indexOf(end, from));
    }
}
