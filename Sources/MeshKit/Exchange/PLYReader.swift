import Foundation

/// Reads PLY in ascii, binary_little_endian and binary_big_endian, driven by the header alone: any element order,
/// any property order and scalar types, face lists with any count and index types (`vertex_indices` or
/// `vertex_index`), vertex colours, unknown elements and properties skipped. Counts in the header are checked
/// against the bytes actually present before anything is allocated.
public enum PLYReader {
    enum Encoding { case ascii, little, big }

    enum Scalar {
        case int8, uint8, int16, uint16, int32, uint32, float32, float64

        init?(name: String) {
            switch name {
            case "char", "int8": self = .int8
            case "uchar", "uint8": self = .uint8
            case "short", "int16": self = .int16
            case "ushort", "uint16": self = .uint16
            case "int", "int32": self = .int32
            case "uint", "uint32": self = .uint32
            case "float", "float32": self = .float32
            case "double", "float64": self = .float64
            default: return nil
            }
        }

        var size: Int {
            switch self {
            case .int8, .uint8: 1
            case .int16, .uint16: 2
            case .int32, .uint32, .float32: 4
            case .float64: 8
            }
        }

        var isFloat: Bool { self == .float32 || self == .float64 }
    }

    struct Property {
        var name: String
        var type: Scalar
        /// For list properties: the type of the count.
        var countType: Scalar?
    }

    struct Element {
        var name: String
        var count: Int
        var properties: [Property] = []

        /// Bytes of one record when no property is a list.
        var fixedSize: Int? {
            properties.contains { $0.countType != nil } ? nil : properties.reduce(0) { $0 + $1.type.size }
        }

        /// The fewest bytes one record can take in binary (lists with zero entries).
        var minimumSize: Int { properties.reduce(0) { $0 + ($1.countType?.size ?? $1.type.size) } }
    }

    public static func read(_ data: Data, limits: MeshLimits = .default) throws(MeshError) -> Mesh {
        guard !data.isEmpty else { throw MeshError(.empty, "PLY file is empty") }
        guard data.count <= limits.maximumFileBytes else {
            throw MeshError(.limitExceeded, "PLY file is larger than \(limits.maximumFileBytes >> 20) MiB")
        }
        let result: Result<Mesh, MeshError> = data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else {
                return .failure(MeshError(.empty, "PLY file is empty"))
            }
            do throws(MeshError) {
                return .success(try parse(base, raw.count, limits: limits))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    static func parseHeader(_ base: UnsafePointer<UInt8>, _ count: Int) throws(MeshError) -> (Encoding, [Element], Int)
    {
        var scanner = TextScanner(base: base, count: min(count, 1 << 16))
        func fail(_ what: String) -> MeshError { MeshError(.malformed, "PLY header line \(scanner.line): \(what)") }
        guard scanner.matches(scanner.token(), "ply") else {
            throw MeshError(.malformed, "not a PLY file: no 'ply' magic")
        }
        scanner.nextLine()
        var encoding: Encoding?
        var elements: [Element] = []
        while true {
            guard !scanner.atEnd else { throw MeshError(.malformed, "PLY header has no end_header within 64 KiB") }
            let keyword = scanner.token()
            if scanner.matches(keyword, "format") {
                let name = scanner.text(scanner.token())
                switch name {
                case "ascii": encoding = .ascii
                case "binary_little_endian": encoding = .little
                case "binary_big_endian": encoding = .big
                default: throw fail("unknown format")
                }
            } else if scanner.matches(keyword, "element") {
                let name = scanner.text(scanner.token())
                guard let count = scanner.integer(), count >= 0 else { throw fail("element count is not a number") }
                guard elements.count < 64 else { throw fail("too many elements") }
                // Readers look elements up by name: a second "vertex" would be read with the first one's layout.
                guard !elements.contains(where: { $0.name == name }) else {
                    throw fail("element \(name) is declared twice")
                }
                elements.append(Element(name: name, count: count))
            } else if scanner.matches(keyword, "property") {
                guard !elements.isEmpty else { throw fail("property before any element") }
                let typeName = scanner.text(scanner.token())
                if typeName == "list" {
                    guard let countType = Scalar(name: scanner.text(scanner.token())), !countType.isFloat,
                        let itemType = Scalar(name: scanner.text(scanner.token()))
                    else { throw fail("bad list property types") }
                    let name = scanner.text(scanner.token())
                    elements[elements.count - 1].properties.append(
                        Property(name: name, type: itemType, countType: countType))
                } else {
                    guard let type = Scalar(name: typeName) else { throw fail("unknown property type") }
                    let name = scanner.text(scanner.token())
                    elements[elements.count - 1].properties.append(Property(name: name, type: type, countType: nil))
                }
                guard elements[elements.count - 1].properties.count <= 256 else { throw fail("too many properties") }
            } else if scanner.matches(keyword, "end_header") {
                scanner.nextLine()
                break
            } else if !(scanner.matches(keyword, "comment") || scanner.matches(keyword, "obj_info") || keyword.isEmpty)
            {
                throw fail("unknown header keyword")
            }
            scanner.nextLine()
        }
        guard let encoding else { throw MeshError(.malformed, "PLY header has no format line") }
        return (encoding, elements, scanner.position)
    }

    static func parse(_ base: UnsafePointer<UInt8>, _ count: Int, limits: MeshLimits) throws(MeshError) -> Mesh {
        let (encoding, elements, bodyStart) = try parseHeader(base, count)
        let remaining = count - bodyStart
        // Check the header's claims against the bytes that are really there, before allocating.
        var minimumBytes = 0
        for element in elements {
            let perRecord = encoding == .ascii ? max(element.properties.count, 1) * 2 : element.minimumSize
            let (product, overflow) = element.count.multipliedReportingOverflow(by: max(perRecord, 1))
            guard !overflow, minimumBytes + product <= remaining || (element.count == 0) else {
                throw MeshError(
                    .truncated,
                    "PLY header claims \(element.count) \(element.name) records but only \(remaining) bytes follow")
            }
            minimumBytes += product
        }
        guard let vertexElement = elements.first(where: { $0.name == "vertex" }) else {
            throw MeshError(.malformed, "PLY has no vertex element")
        }
        guard vertexElement.count <= limits.maximumVertices else {
            throw MeshError(.limitExceeded, "PLY has more than \(limits.maximumVertices) vertices")
        }
        guard let xIndex = vertexElement.properties.firstIndex(where: { $0.name == "x" && $0.countType == nil }),
            let yIndex = vertexElement.properties.firstIndex(where: { $0.name == "y" && $0.countType == nil }),
            let zIndex = vertexElement.properties.firstIndex(where: { $0.name == "z" && $0.countType == nil })
        else { throw MeshError(.malformed, "PLY vertex element has no x, y, z properties") }
        func colourIndex(_ names: [String]) -> Int? {
            vertexElement.properties.firstIndex { names.contains($0.name) && $0.countType == nil }
        }
        let colourIndices = [
            colourIndex(["red", "r", "diffuse_red"]), colourIndex(["green", "g", "diffuse_green"]),
            colourIndex(["blue", "b", "diffuse_blue"]),
        ]
        let hasColour = colourIndices.allSatisfy { $0 != nil }

        var reader = ValueReader(base: base, end: count, position: bodyStart, encoding: encoding)
        var positions: [SIMD3<Double>] = []
        var colors: [SIMD3<UInt8>] = []
        var triangles: [SIMD3<UInt32>] = []
        var polygon: [Int] = []
        for element in elements {
            if encoding != .ascii, element.name == "vertex", let stride = element.fixedSize,
                reader.end - reader.position >= element.count * stride
            {
                let layout = FixedVertices(
                    element: element, xyz: [xIndex, yIndex, zIndex],
                    colours: hasColour ? colourIndices.compactMap { $0 } : [],
                    big: encoding == .big)
                // A body of just these vertices and a triangle list: read both blocks at once, on two cores.
                if elements.count == 2, elements[1].name == "face", let faces = FaceList(elements[1]) {
                    let vertexStart = reader.position
                    let faceStart = vertexStart + element.count * stride
                    let bytes = SharedBytes(base: base)
                    let blocks = parallelMap(2, minimumChunk: 1) { range -> [Block] in
                        let base = bytes.base
                        return range.map { job -> Block in
                            do throws(MeshError) {
                                if job == 0 {
                                    let (v, c) = try layout.read(base, from: vertexStart, count: element.count)
                                    return Block.vertices(v, c)
                                }
                                let (f, end) = try faces.read(
                                    base, from: faceStart, end: count, count: elements[1].count,
                                    vertexCount: element.count, big: encoding == .big, limits: limits)
                                return Block.faces(f, end)
                            } catch {
                                return Block.failure(error)
                            }
                        }
                    }
                    for block in blocks { if case .failure(let error) = block { throw error } }
                    guard case .vertices(let v, let c) = blocks[0], case .faces(let f, _) = blocks[1] else {
                        throw MeshError(.malformed, "PLY could not be read")
                    }
                    guard !f.isEmpty else { throw MeshError(.empty, "PLY has no faces") }
                    return Mesh(positions: v, triangles: f, colors: hasColour ? c : nil)
                }
                let (v, c) = try layout.read(base, from: reader.position, count: element.count)
                positions = v
                colors = c
                reader.position += element.count * stride
                continue
            }
            if encoding != .ascii, element.name == "face", let faces = FaceList(element) {
                let (f, end) = try faces.read(
                    base, from: reader.position, end: count, count: element.count, vertexCount: positions.count,
                    big: encoding == .big, limits: limits)
                triangles = f
                reader.position = end
                continue
            }
            if element.name == "vertex" {
                positions.reserveCapacity(element.count)
                if hasColour { colors.reserveCapacity(element.count) }
                var values = [Double](repeating: 0, count: element.properties.count)
                for _ in 0..<element.count {
                    for (index, property) in element.properties.enumerated() {
                        if let countType = property.countType {
                            let n = try reader.listCount(countType)
                            for _ in 0..<n { _ = try reader.value(property.type) }
                        } else {
                            values[index] = try reader.value(property.type)
                        }
                    }
                    let p = SIMD3(values[xIndex], values[yIndex], values[zIndex])
                    guard p.x.isFinite && p.y.isFinite && p.z.isFinite else {
                        throw MeshError(.nonFinite, "PLY vertex \(positions.count) has a NaN or infinite coordinate")
                    }
                    positions.append(p)
                    if hasColour {
                        var rgb = SIMD3<UInt8>()
                        for channel in 0..<3 {
                            let property = element.properties[colourIndices[channel] ?? 0]
                            let value = values[colourIndices[channel] ?? 0]
                            let scaled = property.type.isFloat ? value * 255 : value
                            rgb[channel] = UInt8(max(0, min(255, scaled.isFinite ? scaled.rounded() : 0)))
                        }
                        colors.append(rgb)
                    }
                }
            } else if element.name == "face" {
                guard
                    let listIndex = element.properties.firstIndex(where: {
                        ($0.name == "vertex_indices" || $0.name == "vertex_index") && $0.countType != nil
                    })
                else { throw MeshError(.malformed, "PLY face element has no vertex_indices list") }
                triangles.reserveCapacity(min(element.count, limits.maximumTriangles))
                for faceNumber in 0..<element.count {
                    for (index, property) in element.properties.enumerated() {
                        guard let countType = property.countType else {
                            _ = try reader.value(property.type)
                            continue
                        }
                        let n = try reader.listCount(countType)
                        if index != listIndex {
                            for _ in 0..<n { _ = try reader.value(property.type) }
                            continue
                        }
                        polygon.removeAll(keepingCapacity: true)
                        for _ in 0..<n {
                            let raw = try reader.value(property.type)
                            guard raw >= 0, raw < Double(positions.count), raw == raw.rounded() else {
                                throw MeshError(
                                    .indexOutOfRange,
                                    "PLY face \(faceNumber) names vertex \(raw) of \(positions.count)")
                            }
                            polygon.append(Int(raw))
                        }
                        guard n >= 3 else {
                            throw MeshError(.malformed, "PLY face \(faceNumber) has fewer than three vertices")
                        }
                        guard triangles.count + n - 2 <= limits.maximumTriangles else {
                            throw MeshError(.limitExceeded, "PLY has more than \(limits.maximumTriangles) triangles")
                        }
                        for k in 1..<(n - 1) {
                            triangles.append(SIMD3(UInt32(polygon[0]), UInt32(polygon[k]), UInt32(polygon[k + 1])))
                        }
                    }
                }
            } else {
                for _ in 0..<element.count {
                    for property in element.properties {
                        if let countType = property.countType {
                            let n = try reader.listCount(countType)
                            for _ in 0..<n { _ = try reader.value(property.type) }
                        } else {
                            _ = try reader.value(property.type)
                        }
                    }
                }
            }
        }
        guard !positions.isEmpty else { throw MeshError(.empty, "PLY has no vertices") }
        guard !triangles.isEmpty else { throw MeshError(.empty, "PLY has no faces") }
        return Mesh(positions: positions, triangles: triangles, colors: hasColour ? colors : nil)
    }

    @inline(__always) static func scalar(_ type: Scalar, _ pointer: UnsafeRawPointer, big: Bool) -> Double {
        switch type {
        case .int8: return Double(pointer.load(as: Int8.self))
        case .uint8: return Double(pointer.load(as: UInt8.self))
        case .int16:
            let bits = pointer.loadUnaligned(as: UInt16.self)
            return Double(Int16(bitPattern: big ? UInt16(bigEndian: bits) : UInt16(littleEndian: bits)))
        case .uint16:
            let bits = pointer.loadUnaligned(as: UInt16.self)
            return Double(big ? UInt16(bigEndian: bits) : UInt16(littleEndian: bits))
        case .int32:
            let bits = pointer.loadUnaligned(as: UInt32.self)
            return Double(Int32(bitPattern: big ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits)))
        case .uint32:
            let bits = pointer.loadUnaligned(as: UInt32.self)
            return Double(big ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits))
        case .float32:
            let bits = pointer.loadUnaligned(as: UInt32.self)
            return Double(Float(bitPattern: big ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits)))
        case .float64:
            let bits = pointer.loadUnaligned(as: UInt64.self)
            return Double(bitPattern: big ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits))
        }
    }

    /// The file's bytes, shared read-only by the two block readers while `read` holds the buffer.
    struct SharedBytes: @unchecked Sendable {
        let base: UnsafePointer<UInt8>
    }

    /// What one of the two parallel block readers produced.
    enum Block: Sendable {
        case vertices([SIMD3<Double>], [SIMD3<UInt8>])
        case faces([SIMD3<UInt32>], Int)
        case failure(MeshError)
    }

    /// Reader of a binary vertex element whose records all have one size: properties are read at fixed offsets.
    struct FixedVertices: Sendable {
        let types: [Scalar]
        let offsets: [Int]
        let colourTypes: [Scalar]
        let colourOffsets: [Int]
        let stride: Int
        let big: Bool

        init(element: Element, xyz: [Int], colours: [Int], big: Bool) {
            var offsets: [Int] = []
            var offset = 0
            for property in element.properties {
                offsets.append(offset)
                offset += property.type.size
            }
            self.types = xyz.map { element.properties[$0].type }
            self.offsets = xyz.map { offsets[$0] }
            self.colourTypes = colours.map { element.properties[$0].type }
            self.colourOffsets = colours.map { offsets[$0] }
            self.stride = offset
            self.big = big
        }

        func read(_ base: UnsafePointer<UInt8>, from start: Int, count: Int) throws(MeshError) -> (
            [SIMD3<Double>], [SIMD3<UInt8>]
        ) {
            var positions = [SIMD3<Double>]()
            var colors = [SIMD3<UInt8>]()
            positions.reserveCapacity(count)
            if !colourTypes.isEmpty { colors.reserveCapacity(count) }
            let raw = UnsafeRawPointer(base)
            let floats = types.allSatisfy { $0 == .float32 } && !big
            let (ox, oy, oz) = (offsets[0], offsets[1], offsets[2])
            for record in 0..<count {
                let at = start + record * stride
                let p: SIMD3<Double>
                if floats {
                    // The common layout: little-endian float32 coordinates.
                    p = SIMD3(
                        Double(
                            Float(
                                bitPattern: UInt32(
                                    littleEndian: raw.loadUnaligned(fromByteOffset: at + ox, as: UInt32.self)))),
                        Double(
                            Float(
                                bitPattern: UInt32(
                                    littleEndian: raw.loadUnaligned(fromByteOffset: at + oy, as: UInt32.self)))),
                        Double(
                            Float(
                                bitPattern: UInt32(
                                    littleEndian: raw.loadUnaligned(fromByteOffset: at + oz, as: UInt32.self)))))
                } else {
                    p = SIMD3(
                        PLYReader.scalar(types[0], raw + at + ox, big: big),
                        PLYReader.scalar(types[1], raw + at + oy, big: big),
                        PLYReader.scalar(types[2], raw + at + oz, big: big))
                }
                guard p.x.isFinite && p.y.isFinite && p.z.isFinite else {
                    throw MeshError(.nonFinite, "PLY vertex \(record) has a NaN or infinite coordinate")
                }
                positions.append(p)
                if !colourTypes.isEmpty {
                    var rgb = SIMD3<UInt8>()
                    for channel in 0..<3 {
                        let value = PLYReader.scalar(colourTypes[channel], raw + at + colourOffsets[channel], big: big)
                        let scaled = colourTypes[channel].isFloat ? value * 255 : value
                        rgb[channel] = UInt8(max(0, min(255, scaled.isFinite ? scaled.rounded() : 0)))
                    }
                    colors.append(rgb)
                }
            }
            return (positions, colors)
        }
    }

    /// Reader of the usual binary face element: one list of 32-bit indices with a one-byte count.
    struct FaceList: Sendable {
        init?(_ element: Element) {
            guard element.properties.count == 1, let countType = element.properties[0].countType, countType.size == 1,
                element.properties[0].type.size == 4, !element.properties[0].type.isFloat,
                element.properties[0].name == "vertex_indices" || element.properties[0].name == "vertex_index"
            else { return nil }
        }

        /// The triangles and the offset after the element.
        func read(
            _ base: UnsafePointer<UInt8>, from start: Int, end: Int, count: Int, vertexCount: Int, big: Bool,
            limits: MeshLimits
        ) throws(MeshError) -> ([SIMD3<UInt32>], Int) {
            var triangles = [SIMD3<UInt32>]()
            triangles.reserveCapacity(min(count, limits.maximumTriangles))
            let raw = UnsafeRawPointer(base)
            let vertices = UInt32(min(vertexCount, Int(UInt32.max)))
            var position = start
            for faceNumber in 0..<count {
                guard end - position >= 1 else { throw MeshError(.truncated, "PLY body ends early") }
                let n = Int(base[position])
                guard n >= 3 else {
                    throw MeshError(.malformed, "PLY face \(faceNumber) has fewer than three vertices")
                }
                guard end - position >= 1 + 4 * n else { throw MeshError(.truncated, "PLY body ends early") }
                guard triangles.count + n - 2 <= limits.maximumTriangles else {
                    throw MeshError(.limitExceeded, "PLY has more than \(limits.maximumTriangles) triangles")
                }
                @inline(__always) func index(_ k: Int) throws(MeshError) -> UInt32 {
                    var bits = raw.loadUnaligned(fromByteOffset: position + 1 + 4 * k, as: UInt32.self)
                    bits = big ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits)
                    // A negative int32 is a huge uint32 here, so one comparison checks both.
                    guard bits < vertices else {
                        throw MeshError(.indexOutOfRange, "PLY face \(faceNumber) names a vertex out of range")
                    }
                    return bits
                }
                let first = try index(0)
                var previous = try index(1)
                for k in 2..<n {
                    let next = try index(k)
                    triangles.append(SIMD3(first, previous, next))
                    previous = next
                }
                position += 1 + 4 * n
            }
            return (triangles, position)
        }
    }

    /// Reads scalar values in the body, in any of the three encodings, never past the end.
    struct ValueReader {
        let base: UnsafePointer<UInt8>
        let end: Int
        var position: Int
        let encoding: Encoding
        var scanner: TextScanner

        init(base: UnsafePointer<UInt8>, end: Int, position: Int, encoding: Encoding) {
            self.base = base
            self.end = end
            self.position = position
            self.encoding = encoding
            self.scanner = TextScanner(base: base, count: end, position: position)
        }

        mutating func listCount(_ type: Scalar) throws(MeshError) -> Int {
            let value = try self.value(type)
            guard value >= 0, value <= 1_000_000 else {
                throw MeshError(.malformed, "PLY list length \(value) is invalid")
            }
            return Int(value)
        }

        @inline(__always) mutating func value(_ type: Scalar) throws(MeshError) -> Double {
            if encoding == .ascii {
                // Values run across line ends freely: skip spaces and newlines alike.
                while scanner.position < scanner.end {
                    let byte = scanner.base[scanner.position]
                    if byte == 0x20 || byte == 0x09 || byte == 0x0D {
                        scanner.position += 1
                    } else if byte == 0x0A {
                        scanner.position += 1
                        scanner.line += 1
                    } else {
                        break
                    }
                }
                if scanner.atEnd { throw MeshError(.truncated, "PLY body ends early") }
                guard let value = scanner.double() else {
                    throw MeshError(.malformed, "PLY body line has a value that is not a number")
                }
                return value
            }
            let size = type.size
            guard end - position >= size else { throw MeshError(.truncated, "PLY body ends early") }
            var bits: UInt64 = 0
            if encoding == .little {
                for index in 0..<size { bits |= UInt64(base[position + index]) << (8 * index) }
            } else {
                for index in 0..<size { bits = bits << 8 | UInt64(base[position + index]) }
            }
            position += size
            switch type {
            case .int8: return Double(Int8(truncatingIfNeeded: bits))
            case .uint8: return Double(UInt8(truncatingIfNeeded: bits))
            case .int16: return Double(Int16(truncatingIfNeeded: bits))
            case .uint16: return Double(UInt16(truncatingIfNeeded: bits))
            case .int32: return Double(Int32(truncatingIfNeeded: bits))
            case .uint32: return Double(UInt32(truncatingIfNeeded: bits))
            case .float32: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
            case .float64: return Double(bitPattern: bits)
            }
        }
    }
}
