import Foundation

/// A DICOM dataset: data elements keyed by tag, iterated in ascending tag order.
public struct Dataset: Hashable, Sendable {
    private var storage: [Tag: DataElement] = [:]

    public init() {}

    public init(_ elements: [DataElement]) {
        for element in elements { storage[element.tag] = element }
    }

    /// Elements in ascending tag order, as DICOM encodes and DICOM JSON lists them.
    public var elements: [DataElement] { storage.values.sorted { $0.tag < $1.tag } }
    public var tags: [Tag] { storage.keys.sorted() }
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    public subscript(tag: Tag) -> DataElement? {
        get { storage[tag] }
        set {
            if var element = newValue {
                element.tag = tag
                storage[tag] = element
            } else {
                storage[tag] = nil
            }
        }
    }

    public mutating func set(_ element: DataElement) { storage[element.tag] = element }

    public mutating func set(_ tag: Tag, _ vr: VR, _ strings: String...) {
        set(DataElement(tag, vr, strings: strings))
    }

    public mutating func set(_ tag: Tag, _ vr: VR, strings: [String]) { set(DataElement(tag, vr, strings: strings)) }

    public mutating func set(_ tag: Tag, _ vr: VR, unsigned: UInt64...) {
        set(DataElement(tag, vr, .unsigned(unsigned)))
    }

    public mutating func set(_ tag: Tag, sequence items: [Dataset]) { set(DataElement(tag, .SQ, .sequence(items))) }

    public mutating func remove(_ tag: Tag) { storage[tag] = nil }

    /// Removes every element for which `predicate` holds (at the top level).
    public mutating func removeAll(where predicate: (DataElement) -> Bool) {
        for (tag, element) in storage where predicate(element) { storage[tag] = nil }
    }

    // MARK: typed accessors

    /// The first value as text: strings as written, PN in encoded form, numbers in decimal.
    public func string(_ tag: Tag) -> String? { strings(tag)?.first }

    public func strings(_ tag: Tag) -> [String]? {
        guard let element = storage[tag] else { return nil }
        switch element.value {
        case .strings(let values): return values
        case .personNames(let names): return names.map(\.dicomString)
        case .unsigned(let values): return values.map { String($0) }
        case .signed(let values): return values.map { String($0) }
        case .doubles(let values): return values.map { String($0) }
        case .tags(let values): return values.map(\.hex)
        default: return nil
        }
    }

    public func personName(_ tag: Tag) -> PersonName? {
        if case .personNames(let names)? = storage[tag]?.value { return names.first }
        return nil
    }

    public func int(_ tag: Tag) -> Int? {
        guard let element = storage[tag] else { return nil }
        switch element.value {
        case .unsigned(let values): return values.first.flatMap { Int(exactly: $0) }
        case .signed(let values): return values.first.flatMap { Int(exactly: $0) }
        case .strings(let values): return values.first.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        default: return nil
        }
    }

    public func items(_ tag: Tag) -> [Dataset]? {
        if case .sequence(let items)? = storage[tag]?.value { return items }
        return nil
    }

    public func data(_ tag: Tag) -> Data? {
        if case .bytes(let data)? = storage[tag]?.value { return data }
        return nil
    }
}
