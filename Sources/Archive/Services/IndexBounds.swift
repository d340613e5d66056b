import DICOMCore
import Foundation

/// Bounds on what the index keeps per instance, so that one hostile or unusual object cannot fill the in-memory
/// catalogue or the sealed rows, and so that every stored row can be decoded at start-up.
///
/// Left out of the catalogue (study, series and instance attribute sets that QIDO-RS matches and returns): any
/// single value larger than `maximumValueBytes` (a long text, a large sequence), and, once an instance's attributes
/// reach `maximumInstanceBytes`, the largest remaining ones (smaller values are kept first, so identifying keys and
/// UIDs always stay). Left out of the sealed metadata JSON: top-level text values larger than
/// `maximumInlineTextBytes`, which become `bulkdata/<tag>` BulkDataURIs read from the object like binary bulk
/// values. Text nested inside sequences stays inline in the metadata. Everything stays in the stored object.
enum IndexBounds {
    static let maximumValueBytes = 1024
    static let maximumInstanceBytes = 64 * 1024
    static let maximumInlineTextBytes = 64 * 1024

    /// About how many bytes an element's value takes (its encoded length, give or take padding).
    static func size(_ element: DataElement) -> Int {
        switch element.value {
        case .strings(let values): values.reduce(max(0, values.count - 1)) { $0 + $1.utf8.count }
        case .personNames(let names): names.reduce(max(0, names.count - 1)) { $0 + $1.dicomString.utf8.count }
        case .unsigned(let values): values.count * 8
        case .signed(let values): values.count * 8
        case .doubles(let values): values.count * 8
        case .tags(let values): values.count * 4
        case .bytes(let data): data.count
        case .sequence(let items): items.reduce(0) { $0 + 16 + $1.elements.reduce(0) { $0 + 8 + size($1) } }
        case .fragments(let fragments): fragments.reduce(0) { $0 + $1.count }
        case .bulk(let length): Int(length)
        case .bulkURI(let uri): uri.utf8.count
        }
    }

    /// The three attribute sets of one instance, bounded as described above.
    static func bound(study: Dataset, series: Dataset, instance: Dataset) -> (Dataset, Dataset, Dataset) {
        var candidates: [(level: Int, element: DataElement, size: Int)] = []
        for (level, dataset) in [study, series, instance].enumerated() {
            for element in dataset.elements {
                let bytes = size(element)
                if bytes <= maximumValueBytes { candidates.append((level, element, bytes)) }
            }
        }
        candidates.sort { $0.size != $1.size ? $0.size < $1.size : $0.element.tag < $1.element.tag }
        var kept = [Dataset(), Dataset(), Dataset()]
        var total = 0
        for candidate in candidates {
            guard total + candidate.size <= maximumInstanceBytes else { break }
            total += candidate.size
            kept[candidate.level].set(candidate.element)
        }
        return (kept[0], kept[1], kept[2])
    }

    /// The dataset for the metadata JSON: top-level text values over `maximumInlineTextBytes` become BulkDataURIs.
    static func metadata(_ dataset: Dataset) -> Dataset {
        var out = dataset
        for element in dataset.elements {
            switch element.value {
            case .strings, .personNames:
                if size(element) > maximumInlineTextBytes {
                    out.set(DataElement(element.tag, element.vr, .bulkURI("bulkdata/\(element.tag.hex)")))
                }
            default: continue
            }
        }
        return out
    }

    /// How deep sequences nest, counted as the DICOM JSON decoder counts: the items of a top-level sequence are at
    /// depth 1. Stops counting past `limit`.
    static func nestingDepth(_ dataset: Dataset, limit: Int) -> Int {
        var deepest = 0
        for element in dataset.elements {
            guard case .sequence(let items) = element.value else { continue }
            for item in items {
                deepest = max(deepest, 1 + (limit > 0 ? nestingDepth(item, limit: limit - 1) : 0))
                if deepest > limit { return deepest }
            }
        }
        return deepest
    }
}
