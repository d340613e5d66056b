import Foundation

/// An identity provider's published keys (a JWKS, RFC 7517 §5) as Facet uses them: the RS256 and ES256 signature
/// keys; every other entry is left out.
struct JSONWebKeySet: Sendable {
    /// Larger documents are refused before parsing.
    static let maximumBytes = 1 << 20
    /// Entries beyond this many are not looked at.
    static let maximumEntries = 100

    var keys: [JSONWebKey]

    /// `.invalidInput` when the document is not a JWKS or holds no key Facet can verify with.
    init(json: Data) throws(ArchiveError) {
        guard json.count <= Self.maximumBytes else {
            throw ArchiveError(.invalidInput, "the key set is larger than 1 MiB")
        }
        guard let document = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
            let entries = document["keys"] as? [Any]
        else { throw ArchiveError(.invalidInput, "the key set is not a JWKS (a JSON object with a \"keys\" array)") }
        keys = entries.prefix(Self.maximumEntries).compactMap { ($0 as? [String: Any]).flatMap(JSONWebKey.init) }
        guard !keys.isEmpty else {
            throw ArchiveError(
                .invalidInput,
                "the key set holds no usable signature key (RSA of 2048-8192 bits for RS256, or EC P-256 for ES256)")
        }
    }

    /// What a token's `kid` and `alg` find in the set.
    enum Lookup {
        case found(JSONWebKey)
        /// No key has this id: the set may be out of date.
        case unknownID
        /// The key named is of another type than the algorithm (an RS256 header on an EC key, say).
        case wrongAlgorithm
        /// No `kid`, and the set has more than one key to choose from.
        case ambiguous
    }

    func key(id: String?, algorithm: JSONWebKey.Algorithm) -> Lookup {
        let candidates = id.map { id in keys.filter { $0.id == id } } ?? keys
        guard !candidates.isEmpty else { return .unknownID }
        if id == nil && candidates.count > 1 { return .ambiguous }
        return candidates.first { $0.algorithm == algorithm }.map(Lookup.found) ?? .wrongAlgorithm
    }
}
