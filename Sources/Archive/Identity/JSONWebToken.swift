import Foundation

/// The compact JWS form (RFC 7515) as Facet issues and accepts it: `base64url(header).base64url(claims).base64url(sig)`.
enum JSONWebToken {
    /// Longer tokens are refused before any parsing.
    static let maximumLength = 4096

    static func base64URL(_ data: Data) -> String {
        var text = data.base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Strict base64url: the URL-safe alphabet only, no padding, no whitespace.
    static func decodeBase64URL<S: StringProtocol>(_ text: S) -> Data? {
        guard
            text.utf8.allSatisfy({
                (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D
                    || $0 == 0x5F
            }), text.utf8.count % 4 != 1
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard)
    }
}
