import Crypto
import Foundation
import _CryptoExtras

/// Hashes and verifies passwords and client secrets with scrypt (memory-hard). A hash is kept as a PHC string,
/// `$scrypt$ln=15,r=8,p=1$SALT$HASH` (unpadded base64), so that its parameters can be raised later while older
/// hashes still verify.
public struct PasswordHasher: Sendable {
    /// scrypt's cost: N = 2^logN, block size r, parallelism p.
    public struct Parameters: Sendable, Hashable {
        public var logN: Int
        public var r: Int
        public var p: Int

        public init(logN: Int, r: Int, p: Int) {
            self.logN = logN
            self.r = r
            self.p = p
        }

        /// N = 2^15, r = 8, p = 1: 32 MiB and about 0.1 s per hash.
        public static let recommended = Parameters(logN: 15, r: 8, p: 1)

        /// Bytes of memory one hash needs.
        public var memoryBytes: Int { 128 * r * (1 << logN) * p }

        /// Parameters read from a stored hash are bounded, so that a crafted row cannot exhaust memory or time.
        var isAcceptable: Bool {
            (1...20).contains(logN) && (1...32).contains(r) && (1...16).contains(p) && memoryBytes <= 1 << 30
        }
    }

    /// A parsed hash.
    public struct Encoded: Sendable, Hashable {
        public var parameters: Parameters
        public var salt: Data
        public var hash: Data
    }

    public static let saltBytes = 16
    public static let hashBytes = 32
    /// Longer passwords are refused before hashing (bounded work on untrusted input).
    public static let maximumPasswordBytes = 1024

    public var parameters: Parameters

    public init(parameters: Parameters = .recommended) {
        self.parameters = parameters
    }

    public func hash(_ password: String) throws(ArchiveError) -> String {
        guard password.utf8.count <= Self.maximumPasswordBytes else {
            throw ArchiveError(.invalidInput, "password is longer than \(Self.maximumPasswordBytes) bytes")
        }
        var salt = Data(count: Self.saltBytes)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = generator.next() }
        let derived = try Self.derive(password, salt: salt, parameters: parameters, count: Self.hashBytes)
        return Self.format(Encoded(parameters: parameters, salt: salt, hash: derived))
    }

    /// True when `password` matches `encoded`. A malformed hash or unacceptable parameters never match.
    public func verify(_ password: String, against encoded: String) -> Bool {
        guard password.utf8.count <= Self.maximumPasswordBytes, let parsed = Self.parse(encoded),
            let derived = try? Self.derive(
                password, salt: parsed.salt, parameters: parsed.parameters,
                count: parsed.hash.count)
        else { return false }
        return ConstantTime.equal(derived, parsed.hash)
    }

    /// A well-formed hash that no password matches, with this hasher's parameters: verifying against it costs what a
    /// real verification costs (used for unknown usernames, so that timing does not tell they are unknown).
    public var decoy: String {
        Self.format(
            Encoded(parameters: parameters, salt: Data(count: Self.saltBytes), hash: Data(count: Self.hashBytes)))
    }

    public static func format(_ encoded: Encoded) -> String {
        let p = encoded.parameters
        return "$scrypt$ln=\(p.logN),r=\(p.r),p=\(p.p)$\(base64(encoded.salt))$\(base64(encoded.hash))"
    }

    public static func parse(_ string: String) -> Encoded? {
        guard string.utf8.count <= 512 else { return nil }
        let fields = string.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[1] == "scrypt" else { return nil }
        var values: [String: Int] = [:]
        for pair in fields[2].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[1].utf8.count <= 6, let value = Int(parts[1]), values[String(parts[0])] == nil
            else { return nil }
            values[String(parts[0])] = value
        }
        guard values.count == 3, let logN = values["ln"], let r = values["r"], let p = values["p"],
            let salt = unbase64(fields[3]), let hash = unbase64(fields[4]),
            (8...64).contains(salt.count), (16...64).contains(hash.count)
        else { return nil }
        let parameters = Parameters(logN: logN, r: r, p: p)
        guard parameters.isAcceptable else { return nil }
        return Encoded(parameters: parameters, salt: salt, hash: hash)
    }

    static func derive(_ password: String, salt: Data, parameters: Parameters, count: Int) throws(ArchiveError)
        -> Data
    {
        guard parameters.isAcceptable else { throw ArchiveError(.invalidInput, "scrypt parameters out of bounds") }
        do {
            let key = try KDF.Scrypt.deriveKey(
                from: Data(password.utf8), salt: salt, outputByteCount: count, rounds: 1 << parameters.logN,
                blockSize: parameters.r, parallelism: parameters.p)
            return key.withUnsafeBytes { Data($0) }
        } catch {
            throw ArchiveError(.key, "scrypt failed")
        }
    }

    private static func base64(_ data: Data) -> String {
        var text = data.base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    private static func unbase64<S: StringProtocol>(_ text: S) -> Data? {
        guard text.utf8.count <= 128, !text.contains("=") else { return nil }
        var padded = String(text)
        while padded.utf8.count % 4 != 0 { padded += "=" }
        return Data(base64Encoded: padded)
    }
}
