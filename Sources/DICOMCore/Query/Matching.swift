import Foundation

/// The matching rules of PS3.4 C.2.2.2 as QIDO-RS uses them: UID lists, wildcards (`*`, `?`; case-sensitive
/// except for PN, which Facet matches case-insensitively), single values, and DA/TM/DT ranges with open ends.
enum Matching {
    static func matches(_ key: QueryKey, path: ArraySlice<Tag>, _ dataset: Dataset) -> Bool {
        guard let first = path.first else { return false }
        if path.count > 1 {
            // Sequence matching: some item matches the rest of the path.
            return (dataset.items(first) ?? []).contains { matches(key, path: path.dropFirst(), $0) }
        }
        guard let element = dataset[first] else { return false }
        return matches(key, element)
    }

    static func matches(_ key: QueryKey, _ element: DataElement) -> Bool {
        let query = key.value
        switch element.value {
        case .personNames(let names):
            let pattern = query.lowercased()
            return names.contains { name in
                [name.alphabetic, name.ideographic, name.phonetic, name.dicomString].contains { text in
                    !text.isEmpty && wildcard(pattern, trimmedName(text).lowercased())
                }
            }
        case .strings(let values):
            switch element.vr {
            case .UI:
                let wanted = Set(query.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                return values.contains { wanted.contains($0) }
            case .DA, .TM, .DT:
                guard let range = range(query, vr: element.vr) else { return false }
                return values.contains { inRange(normalized($0, vr: element.vr), range, vr: element.vr) }
            case .IS, .DS:
                guard let number = Double(query.trimmingCharacters(in: .whitespaces)) else { return false }
                return values.contains { Double($0.trimmingCharacters(in: .whitespaces)) == number }
            default:
                return values.contains { wildcard(query, $0.trimmingCharacters(in: .whitespaces)) }
            }
        case .unsigned(let values):
            guard let number = UInt64(query.trimmingCharacters(in: .whitespaces)) else { return false }
            return values.contains(number)
        case .signed(let values):
            guard let number = Int64(query.trimmingCharacters(in: .whitespaces)) else { return false }
            return values.contains(number)
        case .doubles(let values):
            guard let number = Double(query.trimmingCharacters(in: .whitespaces)) else { return false }
            return values.contains(number)
        default:
            return false
        }
    }

    private static func trimmedName(_ text: String) -> String {
        var value = text
        while value.hasSuffix("^") || value.hasSuffix(" ") { value.removeLast() }
        return value
    }

    // MARK: dates and times

    /// An inclusive range of normalised values; nil ends are open.
    struct Range {
        var lower: String?
        var upper: String?
    }

    /// Parses a single value or a `lower-upper` range (either end may be absent). Nil when malformed.
    static func range(_ text: String, vr: VR) -> Range? {
        let value = text.trimmingCharacters(in: .whitespaces)
        let parts: [String]
        if vr == .DT {
            parts = splitDateTimeRange(value)
        } else {
            parts = value.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        }
        switch parts.count {
        case 1:
            guard valid(parts[0], vr: vr) else { return nil }
            return Range(lower: bound(parts[0], vr: vr, upper: false), upper: bound(parts[0], vr: vr, upper: true))
        case 2:
            if parts[0].isEmpty && parts[1].isEmpty { return nil }
            if !parts[0].isEmpty && !valid(parts[0], vr: vr) { return nil }
            if !parts[1].isEmpty && !valid(parts[1], vr: vr) { return nil }
            return Range(
                lower: parts[0].isEmpty ? nil : bound(parts[0], vr: vr, upper: false),
                upper: parts[1].isEmpty ? nil : bound(parts[1], vr: vr, upper: true))
        default:
            return nil
        }
    }

    /// DT values may carry a `-hhmm` UTC offset; the range hyphen is the one whose left side is empty or a
    /// complete-enough date-time.
    private static func splitDateTimeRange(_ value: String) -> [String] {
        let hyphens = value.indices.filter { value[$0] == "-" }
        for index in hyphens {
            let left = String(value[..<index])
            let right = String(value[value.index(after: index)...])
            if (left.isEmpty || valid(left, vr: .DT)) && (right.isEmpty || valid(right, vr: .DT)) {
                return [left, right]
            }
        }
        return [value]
    }

    static func valid(_ text: String, vr: VR) -> Bool {
        let digits = text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || $0 == "." || $0 == ":" }
        switch vr {
        case .DA:
            return text.count == 8 && text.allSatisfy(\.isNumber)
        case .TM:
            let plain = text.replacingOccurrences(of: ":", with: "")
            let whole = plain.split(separator: ".", omittingEmptySubsequences: false)
            return digits && [2, 4, 6].contains(whole[0].count) && whole.count <= 2
                && (whole.count == 1 || whole[0].count == 6)
        case .DT:
            var core = text
            if let sign = text.lastIndex(where: { $0 == "+" || $0 == "-" }),
                text.distance(from: sign, to: text.endIndex) == 5
            {
                core = String(text[..<sign])
            }
            let whole = core.split(separator: ".", omittingEmptySubsequences: false)
            return core.allSatisfy { $0.isNumber || $0 == "." } && [4, 6, 8, 10, 12, 14].contains(whole[0].count)
                && whole.count <= 2
        default:
            return false
        }
    }

    /// Pads a partial value to a full-precision bound: zeros for a lower bound, the largest value for an upper.
    static func bound(_ text: String, vr: VR, upper: Bool) -> String {
        switch vr {
        case .DA:
            return text
        case .TM:
            return padTime(text.replacingOccurrences(of: ":", with: ""), upper: upper)
        default:
            var core = text
            if let sign = text.lastIndex(where: { $0 == "+" || $0 == "-" }),
                text.distance(from: sign, to: text.endIndex) == 5
            {
                core = String(text[..<sign])
            }
            let date = String(core.prefix(8))
            let paddedDate = date.count == 8 ? date : date + String((upper ? "1231" : "0101").suffix(8 - date.count))
            return paddedDate + padTime(String(core.dropFirst(8)), upper: upper)
        }
    }

    static func padTime(_ text: String, upper: Bool) -> String {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let whole = String(parts.first ?? "")
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        let filledWhole = whole + String((upper ? "235959" : "000000").suffix(6 - min(6, whole.count)))
        let filledFraction = fraction + String(repeating: upper ? "9" : "0", count: 6 - min(6, fraction.count))
        return String(filledWhole.prefix(6)) + "." + String(filledFraction.prefix(6))
    }

    /// A stored value, normalised to compare with bounds (a lower-bound padding).
    static func normalized(_ text: String, vr: VR) -> String {
        bound(text.trimmingCharacters(in: .whitespaces), vr: vr, upper: false)
    }

    static func inRange(_ value: String, _ range: Range, vr: VR) -> Bool {
        if vr == .TM, let lower = range.lower, let upper = range.upper, lower > upper {
            // A time range that crosses midnight.
            return value >= lower || value <= upper
        }
        if let lower = range.lower, value < lower { return false }
        if let upper = range.upper, value > upper { return false }
        return true
    }

    /// StudyDate and StudyTime matched together as one date-time range.
    static func combinedDateTime(date: String, time: String, _ dataset: Dataset) -> Bool {
        guard let dates = range(date, vr: .DA), let times = range(time, vr: .TM),
            let storedDate = dataset.string(.studyDate), !storedDate.isEmpty
        else { return false }
        let storedTime = dataset.string(.studyTime).map { normalized($0, vr: .TM) } ?? "000000.000000"
        let value = storedDate + storedTime
        let lower = dates.lower.map { $0 + (times.lower ?? "000000.000000") }
        let upper = dates.upper.map { $0 + (times.upper ?? "235959.999999") }
        if let lower, value < lower { return false }
        if let upper, value > upper { return false }
        return true
    }
}
