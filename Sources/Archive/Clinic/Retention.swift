import Foundation

/// How long a clinic keeps a patient's record (issue 12 §4): the longer of the federal floor and the state's rule,
/// and never less than the clinic's own minimum; a patient under a legal hold is kept whatever the dates say.
///
/// | state | adults: years after the last visit | minors: until the age of |
/// |---|---|---|
/// | CA | 10 | 19 |
/// | TX | 7 | 19 |
/// | FL | 5 | — |
/// | NY | 6 | 21 (the longer end of 19–21) |
/// | NC | 11 | 30 |
/// | federal (HIPAA, 45 CFR 164.316(b)(2)) | 6 | — |
///
/// The minor rule applies to a patient who was under 18 at the last visit. Dates are calendar days (UTC).
public struct RetentionPolicy: Codable, Sendable, Equatable {
    public struct StateRule: Sendable, Equatable {
        public var adultYears: Int
        public var minorUntilAge: Int?
    }

    public static let federalYears = 6
    /// The id of the clinic's policy among its records (kind `policy`).
    public static let recordID = "retention"
    public static let states: [String: StateRule] = [
        "CA": StateRule(adultYears: 10, minorUntilAge: 19), "TX": StateRule(adultYears: 7, minorUntilAge: 19),
        "FL": StateRule(adultYears: 5, minorUntilAge: nil), "NY": StateRule(adultYears: 6, minorUntilAge: 21),
        "NC": StateRule(adultYears: 11, minorUntilAge: 30),
    ]

    /// Two-letter state (one of `states`), or nil for the federal floor and the clinic minimum only.
    public var state: String?
    public var minimumYears: Int

    public init(state: String? = nil, minimumYears: Int = 10) {
        self.state = state
        self.minimumYears = minimumYears
    }

    /// Reads `{"state", "minimumYears"}` (any subset).
    public static func decode(json: Data) throws(ArchiveError) -> RetentionPolicy {
        let fields = try ClinicJSON.object(json, what: "a retention policy", allowed: ["state", "minimumYears"])
        var policy = RetentionPolicy()
        if let state = try ClinicJSON.string(fields, "state")?.uppercased() {
            guard states[state] != nil else {
                throw ArchiveError(
                    .invalidInput, "state is one of \(states.keys.sorted().joined(separator: ", ")) (or null)")
            }
            policy.state = state
        }
        if let raw = fields["minimumYears"], !(raw is NSNull) {
            guard let number = raw as? NSNumber, let years = Int(exactly: number.doubleValue), (0...100).contains(years)
            else { throw ArchiveError(.invalidInput, "minimumYears is a whole number of years, 0 to 100") }
            policy.minimumYears = years
        }
        return policy
    }

    /// Years kept after the last visit, and the rule that sets them.
    public var adultYears: (years: Int, rule: String) {
        var best = (Self.federalYears, "federal \(Self.federalYears) y")
        if let state, let rule = Self.states[state], rule.adultYears > best.0 {
            best = (rule.adultYears, "\(state) \(rule.adultYears) y")
        }
        if minimumYears > best.0 { best = (minimumYears, "clinic minimum \(minimumYears) y") }
        return best
    }

    /// The first day the record may be disposed of (`YYYY-MM-DD`), and why; nil without a last visit.
    public func dueDate(lastVisit: String?, birthDate: String?) -> (date: String, rule: String)? {
        guard let lastVisit, let visit = Self.parts(lastVisit) else { return nil }
        let (years, rule) = adultYears
        var due = (date: Self.format(visit.year + years, visit.month, visit.day), rule: rule)
        if let state, let age = Self.states[state]?.minorUntilAge, let birthDate, let birth = Self.parts(birthDate) {
            let eighteenth = Self.format(birth.year + 18, birth.month, birth.day)
            let untilAge = Self.format(birth.year + age, birth.month, birth.day)
            if lastVisit < eighteenth && untilAge > due.date { due = (untilAge, "\(state) minors until \(age)") }
        }
        return due
    }

    static func parts(_ date: String) -> (year: Int, month: Int, day: Int)? {
        let numbers = date.split(separator: "-").compactMap { Int($0) }
        return numbers.count == 3 ? (numbers[0], numbers[1], numbers[2]) : nil
    }

    /// A day `years` on; 29 February becomes 1 March in a year without one.
    static func format(_ year: Int, _ month: Int, _ day: Int) -> String {
        let (m, d) = month == 2 && day == 29 && ClinicTerms.daysIn(month: 2, year: year) == 28 ? (3, 1) : (month, day)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }
}

/// A legal hold on a patient's record: kept, and never due, until released.
public struct LegalHold: Codable, Sendable, Equatable {
    public var reason: String

    public init(reason: String) { self.reason = reason }
}
