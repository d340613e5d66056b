import Archive
import DICOMCodec
import DICOMCore
import Foundation
import MeshKit

/// The demo clinic `make serve` loads into an empty archive: synthetic patients (no real person) with before and
/// after photo series (JPEG, through the same pipeline as uploads) and one before/after 3D scan pair with a known
/// 4 mm bump on the cheek.
enum DemoClinic {
    struct Patient {
        var id: String
        var name: String
        var birthDate: String
        var sex: String
        var region: String
    }

    static let patients = [
        Patient(id: "DEMO-001", name: "Demo^Avery", birthDate: "19840312", sex: "F", region: "face"),
        Patient(id: "DEMO-002", name: "Demo^Blake", birthDate: "19790921", sex: "M", region: "face"),
        Patient(id: "DEMO-003", name: "Demo^Casey", birthDate: "19920105", sex: "F", region: "breast"),
    ]

    /// Loads the demo; returns the number of instances stored.
    static func load(into service: ArchiveService) async throws -> Int {
        var count = 0
        let uids = try UIDGenerator()
        for (number, patient) in patients.enumerated() {
            for (visit, timing) in ["before", "after"].enumerated() {
                var metadata = ClinicalMetadata()
                metadata.patientID = patient.id
                metadata.patientName = patient.name
                metadata.patientBirthDate = patient.birthDate
                metadata.patientSex = patient.sex
                metadata.studyDate = visit == 0 ? "2026010\(number + 1)" : "2026061\(number + 1)"
                metadata.studyTime = "0930\(number)0"
                metadata.studyDescription = "Aesthetic consultation (\(timing))"
                metadata.accessionNumber = "DEMO\(number + 1)\(visit)"
                try metadata.setRegion(patient.region)
                try metadata.setTiming(timing)
                let views = ["frontal", "oblique-left", "oblique-right"]
                var base = metadata
                try base.setView(views[0])
                let context = InstanceContext(metadata: base, uids: uids)
                let series = uids.make()
                for (index, view) in views.enumerated() {
                    var photo = context
                    try photo.metadata.setView(view)
                    let jpeg = try demoJPEG(seed: number * 10 + visit * 3 + index, context: photo)
                    let prepared = try PhotoConverter.convert(
                        jpeg, context: photo,
                        placement: .init(seriesInstanceUID: series, seriesNumber: 1, instanceNumber: index + 1))
                    count += try await store(prepared, service)
                }
                if number == 0 {
                    // The scan pair: the same face before and after a 4 mm filler bump.
                    let mesh = demoFace(bump: visit == 1 ? 4.0 : 0.0)
                    var scan = context
                    scan.metadata.view = nil
                    let prepared = try MeshConverter.convertSTL(
                        MeshWriter.binarySTL(mesh), context: scan, seriesNumber: 2)
                    for instance in prepared { count += try await store(instance, service) }
                }
            }
        }
        return count
    }

    static func store(_ instance: PreparedInstance, _ service: ArchiveService) async throws -> Int {
        let bytes = try Part10.encode(instance.dataset, transferSyntax: instance.transferSyntaxUID)
        if case .failed(_, _, _, let message, _) = await service.store(bytes) {
            throw ArchiveError(.io, "demo instance not stored: \(message)")
        }
        return 1
    }

    /// A 640x480 synthetic portrait (an oval face on a gradient), through PNG → DICOM → JPEG with DCMTK.
    static func demoJPEG(seed: Int, context: InstanceContext) throws -> Data {
        let width = 640
        let height = 480
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let tone = Double(seed % 7) * 6
        for y in 0..<height {
            for x in 0..<width {
                let dx = (Double(x) - 320 - Double(seed % 3 - 1) * 40) / 150
                let dy = (Double(y) - 240) / 200
                let inside = dx * dx + dy * dy < 1
                let offset = (y * width + x) * 3
                if inside {
                    let shade = 1 - 0.25 * (dx * dx + dy * dy)
                    pixels[offset] = UInt8(min(255, (224 - tone) * shade))
                    pixels[offset + 1] = UInt8(min(255, (180 - tone) * shade))
                    pixels[offset + 2] = UInt8(min(255, (150 - tone) * shade))
                } else {
                    pixels[offset] = UInt8(40 + y / 8)
                    pixels[offset + 1] = UInt8(60 + y / 6)
                    pixels[offset + 2] = UInt8(90 + x / 8)
                }
            }
        }
        let png = PNGWriter.rgb(pixels, width: width, height: height)
        let prepared = try PhotoConverter.convert(
            png, context: context,
            placement: .init(seriesInstanceUID: context.uids.make(), seriesNumber: 1, instanceNumber: 1))
        let part10 = try Part10.encode(prepared.dataset, transferSyntax: prepared.transferSyntaxUID)
        return try Rendering.render(part10, format: .jpeg, quality: 92)
    }

    /// A closed ellipsoidal "head" (120 x 160 x 110 mm), optionally with a Gaussian bump on the left cheek.
    static func demoFace(bump: Double) -> Mesh {
        let rings = 90
        let segments = 120
        var positions: [SIMD3<Double>] = []
        var triangles: [SIMD3<UInt32>] = []
        for ring in 0...rings {
            let theta = Double.pi * Double(ring) / Double(rings)
            for segment in 0..<segments {
                let phi = 2 * Double.pi * Double(segment) / Double(segments)
                var direction = SIMD3(sin(theta) * cos(phi), sin(theta) * sin(phi), cos(theta))
                if ring == 0 || ring == rings { direction = SIMD3(0, 0, cos(theta)) }
                let cheek = SIMD3(0.55, -0.8, -0.2)
                let distance = ((direction - cheek) * (direction - cheek)).sum()
                let radius = 1 + bump / 60 * exp(-distance / 0.02)
                positions.append(SIMD3(60 * direction.x, 55 * direction.y, 80 * direction.z) * radius)
                if ring == 0 || ring == rings { break }
            }
        }
        // Pole-aware indexing: ring 0 and the last ring are single vertices.
        func index(_ ring: Int, _ segment: Int) -> UInt32 {
            if ring == 0 { return 0 }
            if ring == rings { return UInt32(1 + (rings - 1) * segments) }
            return UInt32(1 + (ring - 1) * segments + (segment % segments))
        }
        for ring in 0..<rings {
            for segment in 0..<segments {
                let a = index(ring, segment)
                let b = index(ring, segment + 1)
                let c = index(ring + 1, segment)
                let d = index(ring + 1, segment + 1)
                if ring != 0 { triangles.append(SIMD3(a, c, b)) }
                if ring != rings - 1 { triangles.append(SIMD3(b, c, d)) }
            }
        }
        return Mesh(positions: positions, triangles: triangles)
    }
}

/// A minimal PNG encoder (8-bit RGB, stored deflate blocks): enough for synthetic demo images, no zlib needed.
enum PNGWriter {
    static func rgb(_ pixels: [UInt8], width: Int, height: Int) -> Data {
        var raw = Data()
        raw.reserveCapacity((width * 3 + 1) * height)
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: pixels[(y * width * 3)..<((y + 1) * width * 3)])
        }
        var zlib = Data([0x78, 0x01])
        var offset = 0
        while offset < raw.count || raw.isEmpty {
            let size = min(65535, raw.count - offset)
            let final: UInt8 = offset + size >= raw.count ? 1 : 0
            zlib.append(final)
            zlib.append(contentsOf: [
                UInt8(size & 0xff), UInt8(size >> 8), UInt8(~size & 0xff), UInt8((~size >> 8) & 0xff),
            ])
            zlib.append(raw[offset..<offset + size])
            offset += size
            if raw.isEmpty { break }
        }
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in raw {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        zlib.append(contentsOf: withUnsafeBytes(of: (b << 16 | a).bigEndian) { Array($0) })
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = Data()
        header.append(contentsOf: withUnsafeBytes(of: UInt32(width).bigEndian) { Array($0) })
        header.append(contentsOf: withUnsafeBytes(of: UInt32(height).bigEndian) { Array($0) })
        header.append(contentsOf: [8, 2, 0, 0, 0])
        chunk("IHDR", header, into: &png)
        chunk("IDAT", zlib, into: &png)
        chunk("IEND", Data(), into: &png)
        return png
    }

    static func chunk(_ type: String, _ body: Data, into png: inout Data) {
        png.append(contentsOf: withUnsafeBytes(of: UInt32(body.count).bigEndian) { Array($0) })
        let typed = Data(type.utf8) + body
        png.append(typed)
        png.append(contentsOf: withUnsafeBytes(of: crc32(typed).bigEndian) { Array($0) })
    }

    static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
