import Crypto
import Foundation

/// A share link (issue 12 §3): an unguessable URL that shows a patient's chosen photos, or a comparison's report,
/// without an account — to the patient (portal, at most 30 days) or to another provider (at most 7 days, and only
/// under the patient's active disclosure consent). The token is 256 random bits; only its SHA-256 is kept (as the
/// record's parent), so the index cannot give a working link away.
public struct ShareLink: Codable, Sendable, Equatable {
    public enum Audience: String, Codable, Sendable, CaseIterable {
        case patient, provider

        /// The longest a link to this audience lives.
        public var maximumDays: Int { self == .patient ? 30 : 7 }
    }

    public var audience: Audience
    /// Photos (SOP Instance UIDs).
    public var instances: [String]
    /// A comparison job's id and the SOP Instance UID of its PDF report.
    public var comparison: String?
    public var report: String?
    public var expires: Date
    /// The disclosure consent a provider link was made under.
    public var consent: String?
    public var recipient: String?
    public var revoked: Consent.Withdrawal?

    public init(
        audience: Audience, instances: [String], comparison: String?, report: String?, expires: Date,
        consent: String?, recipient: String?
    ) {
        self.audience = audience
        self.instances = instances
        self.comparison = comparison
        self.report = report
        self.expires = expires
        self.consent = consent
        self.recipient = recipient
    }

    /// A new token: 32 random bytes, base64url without padding (43 characters).
    public static func newToken() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// What the index keeps of a token: its SHA-256, hex; nil for a string that cannot be a token.
    public static func digest(_ token: String) -> String? {
        guard token.utf8.count == 43,
            token.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            })
        else { return nil }
        return Formatting.hex(Data(SHA256.hash(data: Data(token.utf8))))
    }

    /// Whether the link opens at `time`.
    public func isOpen(at time: Date) -> Bool { revoked == nil && time < expires }
}

extension ShareLink {
    /// The page a share link opens: the shared photos (each a download), the report's link, the link's end; no
    /// script, no names, one style allowed by hash.
    public static func page(practice: String, photos: [(url: String, label: String)], report: String?, expires: Date)
        -> String
    {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var body =
            "<h1>Shared by \(escaped(practice))</h1>\n<p>This link works until "
            + "\(Formatting.timestamp(expires).prefix(16).replacingOccurrences(of: "T", with: " ")) UTC.</p>\n"
        if !photos.isEmpty {
            body += "<ul class=\"photos\">\n"
            for photo in photos {
                body +=
                    "<li><a href=\"\(escaped(photo.url))\" download><img src=\"\(escaped(photo.url))\" alt=\""
                    + "\(escaped(photo.label))\"></a></li>\n"
            }
            body += "</ul>\n"
        }
        if let report {
            body += "<p><a href=\"\(escaped(report))\" download>Comparison report (PDF)</a></p>\n"
        }
        return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            + "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            + "<meta name=\"robots\" content=\"noindex\"><title>Shared by \(escaped(practice))</title>"
            + "<style>\(style)</style></head><body>\n\(body)</body></html>\n"
    }

    static let style =
        "body{font-family:sans-serif;margin:2em;color:#222}ul.photos{list-style:none;padding:0;display:flex;"
        + "flex-wrap:wrap;gap:1em}ul.photos img{max-width:320px;height:auto;border:1px solid #ccc}"

    /// The page's CSP source for its style.
    public static var styleSource: String {
        "sha256-" + Data(SHA256.hash(data: Data(style.utf8))).base64EncodedString()
    }
}
