import DICOMCodec
import Foundation

/// A treatment given to a patient (issue 12 §1): the service ("Botox forehead"), who gave it, the day, the regions
/// treated and notes. Stored as a versioned clinic record of its patient.
public struct Treatment: Codable, Sendable, Equatable {
    public var service: String
    public var provider: String?
    /// `YYYY-MM-DD`.
    public var date: String
    public var regions: [String]
    public var notes: String?

    public init(service: String, provider: String?, date: String, regions: [String], notes: String?) {
        self.service = service
        self.provider = provider
        self.date = date
        self.regions = regions
        self.notes = notes
    }

    /// Reads and checks a request body: `{"service", "date", "provider"?, "regions"?, "notes"?}`.
    public static func decode(json: Data) throws(ArchiveError) -> Treatment {
        let fields = try ClinicJSON.object(
            json, what: "a treatment",
            allowed: [
                "service", "provider", "date", "regions", "notes", "version",
            ])
        guard let service = try ClinicJSON.string(fields, "service"), let date = try ClinicJSON.string(fields, "date")
        else { throw ArchiveError(.invalidInput, "a treatment needs \"service\" and \"date\" (YYYY-MM-DD)") }
        let regions = try ClinicJSON.strings(fields["regions"], field: "regions", limit: 32)
        guard let serviceText = try ClinicTerms.text(service, field: "service", limit: 200) else {
            throw ArchiveError(.invalidInput, "service must not be empty")
        }
        return Treatment(
            service: serviceText,
            provider: try ClinicTerms.text(try ClinicJSON.string(fields, "provider"), field: "provider", limit: 200),
            date: try ClinicTerms.date(date, field: "date"),
            regions: Array(Set(try regions.map { v throws(ArchiveError) in try ClinicTerms.term(v, field: "regions") }))
                .sorted(),
            notes: try ClinicTerms.text(try ClinicJSON.string(fields, "notes"), field: "notes"))
    }
}

/// The tags of one instance (issue 12 §1), kept beside it (the stored DICOM object is never rewritten): timing,
/// region and sub-region, view, quality, the treatment the capture belongs to, and the clinic's own tags. Unset
/// fields fall back to what the object itself says (its Anatomic Region, view and timing codes).
public struct InstanceTags: Codable, Sendable, Equatable {
    public enum Timing: String, Codable, Sendable, CaseIterable {
        case before, during, after
        case followUp = "follow-up"
    }

    public enum Quality: String, Codable, Sendable, CaseIterable {
        case clinical
        case marketingApproved = "marketing-approved"
    }

    public var timing: Timing?
    public var region: String?
    public var subregion: String?
    public var view: String?
    public var quality: Quality?
    /// The id of the treatment this capture documents.
    public var treatment: String?
    public var custom: [String]

    public init(
        timing: Timing? = nil, region: String? = nil, subregion: String? = nil, view: String? = nil,
        quality: Quality? = nil, treatment: String? = nil, custom: [String] = []
    ) {
        self.timing = timing
        self.region = region
        self.subregion = subregion
        self.view = view
        self.quality = quality
        self.treatment = treatment
        self.custom = custom
    }

    /// A view as tags keep it: Facet's view names in their canonical spelling (`oblique-left` for `oblique_left`),
    /// any other term as written (lower case).
    public static func view(_ text: String) throws(ArchiveError) -> String {
        if let known = PhotoView(name: text) { return known.rawValue }
        return try ClinicTerms.term(text, field: "view")
    }

    public static let fields: Set<String> = ["timing", "region", "subregion", "view", "quality", "treatment", "custom"]

    /// Applies a `PATCH` body: any subset of the fields; `null` clears one; `custom` replaces the clinic's tags.
    public mutating func apply(patch json: Data) throws(ArchiveError) {
        let fields = try ClinicJSON.object(json, what: "a tag change", allowed: Self.fields)
        guard !fields.isEmpty else { throw ArchiveError(.invalidInput, "a tag change names at least one tag") }
        if let raw = fields["timing"] {
            if raw is NSNull {
                timing = nil
            } else {
                guard let text = raw as? String, let parsed = Timing(rawValue: text.lowercased()) else {
                    throw ArchiveError(.invalidInput, "timing must be one of before, during, after, follow-up")
                }
                timing = parsed
            }
        }
        try applyRest(fields)
    }

    private mutating func applyRest(_ fields: [String: Any]) throws(ArchiveError) {
        for key in ["region", "subregion", "view", "quality", "treatment"] {
            guard let raw = fields[key] else { continue }
            if raw is NSNull {
                switch key {
                case "region": region = nil
                case "subregion": subregion = nil
                case "view": view = nil
                case "quality": quality = nil
                default: treatment = nil
                }
                continue
            }
            guard let text = raw as? String else {
                throw ArchiveError(.invalidInput, "\(key) must be a string or null")
            }
            switch key {
            case "region": region = try ClinicTerms.term(text, field: key)
            case "subregion": subregion = try ClinicTerms.term(text, field: key)
            case "view": view = try Self.view(text)
            case "quality":
                guard let parsed = Quality(rawValue: text.lowercased()) else {
                    throw ArchiveError(.invalidInput, "quality must be clinical or marketing-approved")
                }
                quality = parsed
            default:
                guard let id = ClinicTerms.recordID(text) else {
                    throw ArchiveError(.invalidInput, "treatment must be a treatment id")
                }
                treatment = id
            }
        }
        if let raw = fields["custom"] {
            if raw is NSNull {
                custom = []
            } else {
                let values = try ClinicJSON.strings(raw, field: "custom", limit: 64)
                custom = Array(
                    Set(try values.map { v throws(ArchiveError) in try ClinicTerms.term(v, field: "custom") })
                )
                .sorted()
            }
        }
    }
}

/// A non-destructive annotation layer on a photo (issue 12 §1): arrows, circles, lines, text and measurements in
/// the image's pixel coordinates (column, row from the top left), kept as Facet JSON beside the instance and
/// versioned like every clinic record.
public struct AnnotationLayer: Codable, Sendable, Equatable {
    public enum Shape: String, Codable, Sendable, CaseIterable {
        case arrow, circle, line, text, measurement
    }

    public struct Item: Codable, Sendable, Equatable {
        public var type: Shape
        /// Arrow, line, measurement: from and to. Circle: the centre and a point on the circle. Text: its anchor.
        public var points: [[Double]]
        public var text: String?
        /// `#rrggbb`.
        public var color: String?
        /// Measurements: the length in pixels, and in millimetres when the image has a pixel spacing (set by Facet).
        public var lengthPixels: Double?
        public var lengthMM: Double?
    }

    public var name: String
    public var items: [Item]

    /// Reads and checks a request body `{"name", "items": [{"type", "points", "text"?, "color"?}]}` against the
    /// image's size (columns × rows) and pixel spacing (mm per pixel, row then column) when the object has them.
    public static func decode(json: Data, columns: Int?, rows: Int?, spacing: [Double]?) throws(ArchiveError)
        -> AnnotationLayer
    {
        _ = try ClinicJSON.object(json, what: "an annotation layer", allowed: ["name", "items", "version"])
        let layer: AnnotationLayer
        do {
            layer = try JSONDecoder().decode(AnnotationLayer.self, from: json)
        } catch {
            throw ArchiveError(
                .invalidInput,
                "an annotation layer is {\"name\", \"items\": [{\"type\", \"points\": [[x, y], ...], \"text\"?, \"color\"?}]}"
            )
        }
        guard let name = try ClinicTerms.text(layer.name, field: "name", limit: 200) else {
            throw ArchiveError(.invalidInput, "name must not be empty")
        }
        var checked = AnnotationLayer(name: name, items: [])
        guard layer.items.count <= 500 else { throw ArchiveError(.invalidInput, "a layer holds at most 500 items") }
        for var item in layer.items {
            let needed = item.type == .text ? 1 : 2
            guard item.points.count == needed, item.points.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isFinite) })
            else {
                throw ArchiveError(.invalidInput, "a \(item.type.rawValue) has \(needed) point(s) of [x, y]")
            }
            if let columns, let rows {
                guard
                    item.points.allSatisfy({
                        (0...Double(columns)).contains($0[0]) && (0...Double(rows)).contains($0[1])
                    })
                else { throw ArchiveError(.invalidInput, "a point lies outside the image (\(columns) × \(rows))") }
            }
            item.text = try ClinicTerms.text(item.text, field: "text", limit: 500)
            if item.type == .text && item.text == nil { throw ArchiveError(.invalidInput, "a text item needs text") }
            if let color = item.color {
                guard color.utf8.count == 7, color.first == "#", color.dropFirst().allSatisfy(\.isHexDigit) else {
                    throw ArchiveError(.invalidInput, "color must be #rrggbb")
                }
                item.color = color.lowercased()
            }
            item.lengthPixels = nil
            item.lengthMM = nil
            if item.type == .measurement {
                let (dx, dy) = (item.points[1][0] - item.points[0][0], item.points[1][1] - item.points[0][1])
                item.lengthPixels = (dx * dx + dy * dy).squareRoot()
                if let spacing, spacing.count == 2, spacing.allSatisfy({ $0 > 0 && $0.isFinite }) {
                    let (x, y) = (dx * spacing[1], dy * spacing[0])
                    item.lengthMM = (x * x + y * y).squareRoot()
                }
            }
            checked.items.append(item)
        }
        return checked
    }
}

/// A patient registered through the clinic API before (or without) any image naming them.
public struct PatientRegistration: Codable, Sendable, Equatable {
    public var patientID: String
    public var issuer: String?
    public var name: String?
    /// `YYYY-MM-DD`.
    public var birthDate: String?
    public var sex: String?

    public init(patientID: String, issuer: String?, name: String?, birthDate: String?, sex: String?) {
        self.patientID = patientID
        self.issuer = issuer
        self.name = name
        self.birthDate = birthDate
        self.sex = sex
    }
}

/// Request bodies as JSON objects: strings, arrays of strings and nulls are read with `JSONSerialization` (numbers
/// are never read through it: Foundation on Linux rounds some).
public enum ClinicJSON {
    /// A JSON object of at most 1 MiB whose fields are all among `allowed` (`.invalidInput` otherwise, naming the
    /// first unknown field when it is printable ASCII).
    public static func object(_ data: Data, what: String, allowed: Set<String>, limit: Int = 1 << 20)
        throws(ArchiveError) -> [String: Any]
    {
        guard data.count <= limit,
            let fields = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
                as? [String: Any]
        else { throw ArchiveError(.invalidInput, "\(what) must be a JSON object") }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            let shown = unknown.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 32 } ? unknown.prefix(40) : "?"
            throw ArchiveError(.invalidInput, "\(what) has no field \"\(shown)\"")
        }
        return fields
    }

    /// A text field: nil when absent or null, `.invalidInput` when it is not a string.
    public static func string(_ fields: [String: Any], _ key: String) throws(ArchiveError) -> String? {
        guard let value = fields[key], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw ArchiveError(.invalidInput, "\(key) must be a string") }
        return text
    }

    public static func strings(_ value: Any?, field: String, limit: Int) throws(ArchiveError) -> [String] {
        guard let value, !(value is NSNull) else { return [] }
        guard let values = value as? [String], values.count <= limit else {
            throw ArchiveError(.invalidInput, "\(field) must be a list of at most \(limit) strings")
        }
        return values
    }
}
