/// A parsed `Content-Type` value: type/subtype and parameters (names lower-cased, quoted values unquoted).
public struct MediaType: Sendable, Equatable {
    public var type: String
    public var subtype: String
    public var parameters: [String: String]

    public var essence: String { "\(type)/\(subtype)" }

    /// Parses RFC 9110 media type syntax; nil when it is not one.
    public init?(_ text: String) {
        var rest = Substring(text)
        func skipSpaces() { rest = rest.drop { $0 == " " || $0 == "\t" } }
        func token() -> String {
            let value = rest.prefix { !";=,\" \t".contains($0) }
            rest = rest.dropFirst(value.count)
            return String(value)
        }
        skipSpaces()
        let full = token()
        let parts = full.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        type = parts[0].lowercased()
        subtype = parts[1].lowercased()
        parameters = [:]
        while true {
            skipSpaces()
            guard rest.first == ";" else { break }
            rest = rest.dropFirst()
            skipSpaces()
            let name = token().lowercased()
            skipSpaces()
            guard rest.first == "=", !name.isEmpty else { return nil }
            rest = rest.dropFirst()
            skipSpaces()
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first {
                        value.append(escaped)
                        rest = rest.dropFirst()
                    } else if character == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { return nil }
            } else {
                value = token()
            }
            parameters[name] = value
        }
        skipSpaces()
        guard rest.isEmpty else { return nil }
    }
}
