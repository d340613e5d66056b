import Foundation

/// Reads binary and ASCII STL into an indexed mesh, welding vertices whose coordinates are bit-identical. Binary
/// is decided by length (`84 + 50·n == size`), never by a leading `solid`, which many binary files carry. The
/// ASCII tokenizer is case-insensitive and accepts tabs and any line ending. Facet normals are ignored.
public enum STLReader {
    public static func isBinary(_ data: Data) -> Bool {
        guard data.count >= 84 else { return false }
        let count = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 80, as: UInt32.self).littleEndian }
        return 84 + 50 * UInt64(count) == UInt64(data.count)
    }

    public static func read(_ data: Data, limits: MeshLimits = .default) throws(MeshError) -> Mesh {
        guard !data.isEmpty else { throw MeshError(.empty, "STL file is empty") }
        guard data.count <= limits.maximumFileBytes else {
            throw MeshError(.limitExceeded, "STL file is larger than \(limits.maximumFileBytes >> 20) MiB")
        }
        if isBinary(data) { return try readBinary(data, limits: limits) }
        let leading = data.prefix(1024).drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        let looksLikeText = !data.prefix(4096).contains(0)
        guard looksLikeText, String(decoding: leading.prefix(5), as: UTF8.self).lowercased() == "solid" else {
            if data.count >= 84 {
                let count = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 80, as: UInt32.self).littleEndian }
                throw MeshError(
                    .truncated,
                    "binary STL header claims \(count) triangles (\(84 + 50 * UInt64(count)) bytes) but the file has \(data.count)"
                )
            }
            throw MeshError(.malformed, "not an STL file")
        }
        return try readASCII(data, limits: limits)
    }

    static func readBinary(_ data: Data, limits: MeshLimits) throws(MeshError) -> Mesh {
        let count = (data.count - 84) / 50
        guard count > 0 else { throw MeshError(.empty, "STL has no triangles") }
        guard count <= limits.maximumTriangles else {
            throw MeshError(.limitExceeded, "STL has more than \(limits.maximumTriangles) triangles")
        }
        var welder = Welder<FloatBitsKey>(expectedVertices: count / 2 + 16)
        var triangles = [SIMD3<UInt32>]()
        triangles.reserveCapacity(count)
        var bad: Int?
        data.withUnsafeBytes { raw in
            for t in 0..<count {
                let base = 84 + 50 * t + 12
                var corner = SIMD3<UInt32>()
                for k in 0..<3 {
                    let offset = base + 12 * k
                    let bits = SIMD3(
                        raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian,
                        raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian,
                        raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self).littleEndian)
                    let point = SIMD3(
                        Double(Float(bitPattern: bits.x)), Double(Float(bitPattern: bits.y)),
                        Double(Float(bitPattern: bits.z)))
                    if !(point.x.isFinite && point.y.isFinite && point.z.isFinite) {
                        bad = t
                        return
                    }
                    corner[k] = welder.index(key: FloatBitsKey(bits), point: point)
                }
                triangles.append(corner)
            }
        }
        if let bad { throw MeshError(.nonFinite, "STL triangle \(bad) has a NaN or infinite coordinate") }
        return Mesh(positions: welder.positions, triangles: triangles)
    }

    static func readASCII(_ data: Data, limits: MeshLimits) throws(MeshError) -> Mesh {
        let result: Result<Mesh, MeshError> = data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else {
                return .failure(MeshError(.empty, "STL file is empty"))
            }
            var scanner = TextScanner(base: base, count: raw.count)
            var welder = Welder<DoubleBitsKey>(expectedVertices: raw.count / 200 + 16)
            var triangles = [SIMD3<UInt32>]()
            var corner = SIMD3<UInt32>()
            var cornerCount = 0
            while !scanner.atEnd {
                scanner.skipSpaces()
                if scanner.atEnd { break }
                if scanner.base[scanner.position] == 0x0A || scanner.base[scanner.position] == 0x0D {
                    scanner.nextLine()
                    continue
                }
                let token = scanner.token()
                guard scanner.matches(token, "vertex", caseInsensitive: true) else {
                    if scanner.matches(token, "solid", caseInsensitive: true)
                        || scanner.matches(token, "endsolid", caseInsensitive: true)
                    {
                        scanner.nextLine()
                    }
                    continue
                }
                guard let x = scanner.double(), let y = scanner.double(), let z = scanner.double() else {
                    return .failure(
                        MeshError(.malformed, "ASCII STL line \(scanner.line): a vertex needs three numbers"))
                }
                guard x.isFinite && y.isFinite && z.isFinite else {
                    return .failure(MeshError(.nonFinite, "ASCII STL line \(scanner.line): NaN or infinite coordinate"))
                }
                let point = SIMD3(x, y, z)
                corner[cornerCount] = welder.index(key: DoubleBitsKey(point), point: point)
                cornerCount += 1
                if cornerCount == 3 {
                    guard triangles.count < limits.maximumTriangles else {
                        return .failure(
                            MeshError(.limitExceeded, "STL has more than \(limits.maximumTriangles) triangles"))
                    }
                    triangles.append(corner)
                    cornerCount = 0
                }
            }
            guard cornerCount == 0 else {
                return .failure(
                    MeshError(.malformed, "ASCII STL ends inside a facet (vertex count is not a multiple of 3)"))
            }
            guard !triangles.isEmpty else { return .failure(MeshError(.empty, "STL has no triangles")) }
            return .success(Mesh(positions: welder.positions, triangles: triangles))
        }
        return try result.get()
    }
}

/// A vertex's identity for welding: its coordinates' bit patterns (-0 folded into +0).
protocol WeldKey: Equatable {
    var hash: UInt64 { get }
}

/// Three float32 bit patterns packed into 12 bytes (binary STL).
struct FloatBitsKey: WeldKey {
    var xy: UInt64
    var z: UInt32

    init(_ bits: SIMD3<UInt32>) {
        // -0 and +0 are one position.
        let clean = SIMD3(
            bits.x == 0x8000_0000 ? 0 : bits.x, bits.y == 0x8000_0000 ? 0 : bits.y, bits.z == 0x8000_0000 ? 0 : bits.z)
        xy = UInt64(clean.x) << 32 | UInt64(clean.y)
        z = clean.z
    }

    @inline(__always) var hash: UInt64 {
        var h = xy &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ (h >> 29)) &+ UInt64(z) &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }
}

/// Three float64 bit patterns (ASCII STL).
struct DoubleBitsKey: WeldKey {
    var bits: SIMD3<UInt64>

    init(_ point: SIMD3<Double>) {
        bits = SIMD3(
            point.x == 0 ? 0 : point.x.bitPattern, point.y == 0 ? 0 : point.y.bitPattern,
            point.z == 0 ? 0 : point.z.bitPattern)
    }

    @inline(__always) var hash: UInt64 {
        var h = bits.x &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ (h >> 29)) &+ bits.y &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 31)) &+ bits.z &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 32)
    }
}

/// Merges vertices whose coordinate bit patterns are identical (open addressing, linear probing).
struct Welder<Key: WeldKey> {
    var positions: [SIMD3<Double>] = []
    private var keys: [Key] = []
    private var slots: [Int32]
    private var mask: Int

    init(expectedVertices: Int) {
        var capacity = 1024
        while capacity < expectedVertices * 2 { capacity <<= 1 }
        slots = Array(repeating: -1, count: capacity)
        mask = capacity - 1
        positions.reserveCapacity(expectedVertices)
        keys.reserveCapacity(expectedVertices)
    }

    @inline(__always) mutating func index(key: Key, point: SIMD3<Double>) -> UInt32 {
        var slot = Int(truncatingIfNeeded: key.hash) & mask
        while true {
            let existing = slots[slot]
            if existing < 0 { break }
            if keys[Int(existing)] == key { return UInt32(existing) }
            slot = (slot + 1) & mask
        }
        let index = positions.count
        slots[slot] = Int32(index)
        keys.append(key)
        positions.append(point)
        if positions.count * 2 > slots.count { grow() }
        return UInt32(index)
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        slots = Array(repeating: -1, count: capacity)
        mask = capacity - 1
        for (index, key) in keys.enumerated() {
            var slot = Int(truncatingIfNeeded: key.hash) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(index)
        }
    }
}
