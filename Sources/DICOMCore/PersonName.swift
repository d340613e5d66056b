/// A DICOM PN value: up to three component groups (alphabetic, ideographic, phonetic), each of up to five
/// `^`-separated components (family, given, middle, prefix, suffix).
public struct PersonName: Hashable, Sendable, CustomStringConvertible {
    public var alphabetic: String
    public var ideographic: String
    public var phonetic: String

    public init(alphabetic: String = "", ideographic: String = "", phonetic: String = "") {
        self.alphabetic = alphabetic
        self.ideographic = ideographic
        self.phonetic = phonetic
    }

    /// Parses the `Alphabetic=Ideographic=Phonetic` encoded form.
    public init(dicom value: String) {
        let groups = value.split(separator: "=", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        self.init(
            alphabetic: groups.count > 0 ? Self.trimmed(groups[0]) : "",
            ideographic: groups.count > 1 ? Self.trimmed(groups[1]) : "",
            phonetic: groups.count > 2 ? Self.trimmed(groups[2]) : ""
        )
    }

    /// Family name component of the alphabetic group.
    public var familyName: String {
        alphabetic.split(separator: "^", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    }

    public var isEmpty: Bool { alphabetic.isEmpty && ideographic.isEmpty && phonetic.isEmpty }

    /// The encoded form with trailing empty groups removed.
    public var dicomString: String {
        var groups = [alphabetic, ideographic, phonetic]
        while let last = groups.last, last.isEmpty, groups.count > 1 { groups.removeLast() }
        return groups.joined(separator: "=")
    }

    public var description: String { dicomString }

    private static func trimmed(_ group: String) -> String {
        // Trailing component separators carry no information (PS3.5 6.2.1.1).
        var text = group
        while text.hasSuffix("^") || text.hasSuffix(" ") { text.removeLast() }
        return text
    }
}
