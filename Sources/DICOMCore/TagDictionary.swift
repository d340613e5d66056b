/// The standard DICOM data dictionary: keyword, VR and VM for every fixed standard tag.
public enum TagDictionary {
    /// One dictionary entry.
    public struct Entry: Sendable, Hashable {
        public let tag: Tag
        public let vr: VR
        public let vm: String
        public let keyword: String
    }

    private static let byTag: [Tag: Entry] = {
        var entries: [Tag: Entry] = [:]
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 4, let tag = Tag(hex: fields[0]), let vr = VR(rawValue: String(fields[1])) else {
                continue
            }
            entries[tag] = Entry(tag: tag, vr: vr, vm: String(fields[2]), keyword: String(fields[3]))
        }
        return entries
    }()

    private static let byKeyword: [String: Entry] = {
        var entries: [String: Entry] = [:]
        for entry in byTag.values { entries[entry.keyword] = entry }
        return entries
    }()

    public static func entry(for tag: Tag) -> Entry? { byTag[tag] }
    public static func entry(forKeyword keyword: String) -> Entry? { byKeyword[keyword] }
    public static var count: Int { byTag.count }

    /// The VR to use for `tag`: the dictionary's, or UN for unknown and private tags.
    public static func vr(for tag: Tag) -> VR { byTag[tag]?.vr ?? .UN }
}
