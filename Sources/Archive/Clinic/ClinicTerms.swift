import Foundation

/// The checks every clinic record's fields go through: short terms (regions, views, services, custom tags), free
/// text, calendar dates and record ids. Errors name the field, never its value (a value may be PHI).
public enum ClinicTerms {
    /// A term as it is kept and matched: trimmed, lower-case, runs of spaces as one; 1 to 64 characters of letters,
    /// digits, spaces and `-'’&/.()`.
    public static func term(_ value: String, field: String) throws(ArchiveError) -> String {
        let words = value.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" })
        let normalized = words.joined(separator: " ")
        guard (1...64).contains(normalized.count),
            normalized.unicodeScalars.allSatisfy({
                CharacterSet.alphanumerics.contains($0) || " -'’&/.()".unicodeScalars.contains($0)
            })
        else {
            throw ArchiveError(
                .invalidInput, "\(field) must be 1 to 64 letters, digits, spaces or -'&/.() characters")
        }
        return normalized
    }

    /// Free text (notes, a signer's name, a label): up to `limit` characters, no control characters but line breaks
    /// and tabs; nil for an empty value.
    public static func text(_ value: String?, field: String, limit: Int = 4000) throws(ArchiveError) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        guard trimmed.count <= limit,
            trimmed.unicodeScalars.allSatisfy({
                !CharacterSet.controlCharacters.contains($0) || $0 == "\n" || $0 == "\r" || $0 == "\t"
            })
        else { throw ArchiveError(.invalidInput, "\(field) must be text of at most \(limit) characters") }
        return trimmed
    }

    /// A calendar date as `YYYY-MM-DD` (also read from `YYYYMMDD`, as DICOM writes it); a date that does not exist
    /// (2026-02-30) is refused.
    public static func date(_ value: String, field: String) throws(ArchiveError) -> String {
        let digits = value.replacingOccurrences(of: "-", with: "")
        let shaped =
            value.count == 10
            ? value.utf8.enumerated().allSatisfy { index, byte in
                index == 4 || index == 7 ? byte == UInt8(ascii: "-") : (48...57).contains(byte)
            }
            : value.count == 8 && value.utf8.allSatisfy { (48...57).contains($0) }
        guard shaped, digits.count == 8, let year = Int(digits.prefix(4)),
            let month = Int(digits.dropFirst(4).prefix(2)), let day = Int(digits.suffix(2)),
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), year >= 1900
        else { throw ArchiveError(.invalidInput, "\(field) must be a date as YYYY-MM-DD") }
        return "\(digits.prefix(4))-\(digits.dropFirst(4).prefix(2))-\(digits.suffix(2))"
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// The start of a `YYYY-MM-DD` day, UTC.
    public static func startOfDay(_ date: String) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = date.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        return calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))
    }

    /// The `YYYY-MM-DD` day of an instant, UTC.
    public static func day(of date: Date) -> String {
        String(Formatting.timestamp(date).prefix(10))
    }

    /// Whole days from one `YYYY-MM-DD` day to another.
    public static func days(from start: String, to end: String) -> Int? {
        guard let a = startOfDay(start), let b = startOfDay(end) else { return nil }
        return Int((b.timeIntervalSince(a) / 86_400).rounded())
    }

    /// A record id Facet made (a lower-case UUID), or nil.
    public static func recordID(_ value: String?) -> String? {
        guard let value, value.utf8.count == 36, UUID(uuidString: value) != nil, value == value.lowercased()
        else { return nil }
        return value
    }

    /// A new record id.
    public static func newID() -> String { UUID().uuidString.lowercased() }
}
