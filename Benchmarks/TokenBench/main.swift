// Times the bearer-token check of every request, single thread, against a real SQLite account store in a temporary
// folder: Facet's own ES256 tokens (parse, signature, claims, session check) and an identity provider's RS256 and
// ES256 tokens (parse, key lookup, signature, claims, revocation and local-account checks). Build it in release:
// `swift build -c release --product token-bench`, then `token-bench [ITERATIONS]` (default 10,000 per case).
import Archive
import Crypto
import Foundation
import _CryptoExtras

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// Prints the median, 99th percentile and mean of samples in microseconds.
func report(_ name: String, _ samples: [Double]) {
    let sorted = samples.sorted()
    let median = sorted[sorted.count / 2]
    let p99 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
    let mean = sorted.reduce(0, +) / Double(sorted.count)
    let padded = name.padding(toLength: 50, withPad: " ", startingAt: 0)
    print(String(format: "%@ median %7.1f µs   p99 %7.1f µs   mean %7.1f µs", padded, median, p99, mean))
}

/// Times `iterations` calls, after a tenth as many untimed ones.
func measure(_ name: String, iterations: Int, _ body: () async throws -> Void) async rethrows {
    for _ in 0..<max(100, iterations / 10) { try await body() }
    var samples: [Double] = []
    samples.reserveCapacity(iterations)
    for _ in 0..<iterations {
        let start = DispatchTime.now().uptimeNanoseconds
        try await body()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
    }
    report(name, samples)
}

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 10_000 : 10_000
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("facet-token-bench-\(UUID().uuidString)")

do {
    let keys = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), environment: [:]).keys
    var tokenSettings = TokenService.Settings()
    // Long enough for the case that moves the clock 31 s per check.
    tokenSettings.lifetime = 1e7
    var identity = try IdentityServices.open(dataDirectory: folder, keys: keys, tokenSettings: tokenSettings)
    _ = try await identity.administration.add(
        tenant: "default", username: "dr.own", role: .physician, password: "bench pw 123")
    // The provider's user also has a local account, so its status lookup finds a row.
    _ = try await identity.administration.add(
        tenant: "default", username: "dr.oidc", role: .nurse, password: "bench pw 123")

    // The identity provider: an RSA-2048 and a P-256 key in a JWKS file.
    let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
    let ec = P256.Signing.PrivateKey()
    let primitives = try rsa.publicKey.getKeyPrimitives()
    let keySet: [String: Any] = [
        "keys": [
            [
                "kty": "RSA", "kid": "rsa-1", "use": "sig", "n": base64URL(primitives.modulus),
                "e": base64URL(primitives.publicExponent),
            ],
            [
                "kty": "EC", "kid": "ec-1", "crv": "P-256", "x": base64URL(ec.publicKey.rawRepresentation.prefix(32)),
                "y": base64URL(ec.publicKey.rawRepresentation.suffix(32)),
            ],
        ]
    ]
    let keySetFile = folder.appendingPathComponent("jwks.json")
    try JSONSerialization.data(withJSONObject: keySet).write(to: keySetFile)
    let issuer = "https://idp.clinic.example/realms/facet"
    identity.identityProvider = try OIDCTokenVerifier(
        settings: .init(issuer: issuer, audience: "facet-archive", keySet: .file(keySetFile.path)),
        store: identity.store)

    let now = Int(Date().timeIntervalSince1970)
    func providerToken(_ alg: String, _ kid: String, jti: String, _ sign: (Data) throws -> Data) throws -> String {
        let claims =
            #"{"iss":"\#(issuer)","aud":["account","facet-archive"],"sub":"0b8f3c2e-5a61-4f0e-9d1b-7c2a4e6f8a90","#
            + #""preferred_username":"dr.oidc","role":["offline_access","uma_authorization","physician"],"#
            + #""iat":\#(now),"exp":\#(now + 3600),"jti":"\#(jti)"}"#
        let input =
            base64URL(Data(#"{"alg":"\#(alg)","kid":"\#(kid)","typ":"JWT"}"#.utf8)) + "."
            + base64URL(Data(claims.utf8))
        return input + "." + base64URL(try sign(Data(input.utf8)))
    }
    func rs256(_ jti: String) throws -> String {
        try providerToken("RS256", "rsa-1", jti: jti) {
            try rsa.signature(for: $0, padding: .insecurePKCS1v1_5).rawRepresentation
        }
    }
    func es256(_ jti: String) throws -> String {
        try providerToken("ES256", "ec-1", jti: jti) { try ec.signature(for: $0).rawRepresentation }
    }
    let repeatedRS256 = try rs256(UUID().uuidString)
    let repeatedES256 = try es256(UUID().uuidString)
    let own = try await identity.tokens.issue(tenant: "default", username: "dr.own", role: .physician).accessToken
    // Its own token: the clock of that case runs days ahead, which would make every later check of `own` a write.
    let written = try await identity.tokens.issue(tenant: "default", username: "dr.own", role: .physician).accessToken
    // The same store and key without the cache of verified tokens: every check is a token's first.
    tokenSettings.verifiedTokenCacheSize = 0
    var uncached = try IdentityServices.open(dataDirectory: folder, keys: keys, tokenSettings: tokenSettings)
    uncached.identityProvider = identity.identityProvider
    // Tokens never seen before, one per check.
    let count = iterations + max(100, iterations / 10)
    let freshRS256 = try (0..<count).map { try rs256("rs-\($0)") }
    let freshES256 = try (0..<count).map { try es256("es-\($0)") }

    print("token checks, \(iterations) timed iterations per case, one thread, SQLite store in \(folder.path)")
    try await measure("Facet ES256, again (last use written <= 1/30 s)", iterations: iterations) {
        _ = try await identity.verify(own)
    }
    // Each check 31 s after the one before: every check writes the session's last use (a SQLite commit).
    var clock = Date()
    try await measure("Facet ES256, again (last use written each time)", iterations: iterations) {
        clock += 31
        _ = try await identity.verify(written, now: clock)
    }
    try await measure("Facet ES256, first use (signature checked)", iterations: iterations) {
        _ = try await uncached.verify(own)
    }
    try await measure("provider RS256, again", iterations: iterations) { _ = try await identity.verify(repeatedRS256) }
    try await measure("provider ES256, again", iterations: iterations) { _ = try await identity.verify(repeatedES256) }
    var next = 0
    try await measure("provider RS256, first use (signature checked)", iterations: iterations) {
        _ = try await identity.verify(freshRS256[next])
        next += 1
    }
    next = 0
    try await measure("provider ES256, first use (signature checked)", iterations: iterations) {
        _ = try await identity.verify(freshES256[next])
        next += 1
    }

    // The parts, for where the time goes.
    let ownParts = own.split(separator: ".")
    let ownInput = Data((ownParts[0] + "." + ownParts[1]).utf8)
    let ownSignature = try P256.Signing.ECDSASignature(
        rawRepresentation: Data(base64Encoded: base64Standard(String(ownParts[2]))) ?? Data())
    let ownKey = try P256.Signing.PublicKey(rawRepresentation: identity.tokens.verificationKey.rawRepresentation)
    await measure("  of which: ECDSA P-256 signature check", iterations: iterations) {
        precondition(ownKey.isValidSignature(ownSignature, for: ownInput))
    }
    let rawKey = identity.tokens.verificationKey.rawRepresentation
    try await measure("  of which: P-256 public key from x ‖ y", iterations: iterations) {
        _ = try P256.Signing.PublicKey(rawRepresentation: rawKey)
    }
    let rsParts = repeatedRS256.split(separator: ".")
    let rsInput = Data((rsParts[0] + "." + rsParts[1]).utf8)
    let rsSignature = _RSA.Signing.RSASignature(
        rawRepresentation: Data(base64Encoded: base64Standard(String(rsParts[2]))) ?? Data())
    await measure("  of which: RSA-2048 PKCS#1 v1.5 check", iterations: iterations) {
        precondition(rsa.publicKey.isValidSignature(rsSignature, for: rsInput, padding: .insecurePKCS1v1_5))
    }
    try await measure("  of which: revocation lookup (SQLite read)", iterations: iterations) {
        _ = try await identity.store.isRevoked("no-such-token")
    }
    try await measure("  of which: local account lookup (SQLite read)", iterations: iterations) {
        _ = try await identity.store.accountStatus(tenant: "default", username: "dr.oidc")
    }
    // What the server adds around a check: the hop from a request's task to the token pool and back.
    let pool = BlockingPool(threads: 2, queueLimit: 4096)
    var hops: [Double] = []
    for round in 0..<(iterations + iterations / 10) {
        let begin = DispatchTime.now().uptimeNanoseconds
        try await pool.run(alwaysQueue: true) {}
        if round >= iterations / 10 { hops.append(Double(DispatchTime.now().uptimeNanoseconds - begin) / 1000) }
    }
    report("hop to the token pool and back", hops)
    try? FileManager.default.removeItem(at: folder)
} catch {
    FileHandle.standardError.write(Data("token-bench: \(error)\n".utf8))
    exit(1)
}

func base64Standard(_ text: String) -> String {
    var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while standard.utf8.count % 4 != 0 { standard += "=" }
    return standard
}
