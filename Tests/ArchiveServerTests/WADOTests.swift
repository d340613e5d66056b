import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import ArchiveServer

@Suite struct WADOTests {
    @Test func retrievesWhatWasStoredByteForByte() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored = await archive.service.store(photo.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        let base = "/dicomweb/studies/\(photo.study)/series/\(photo.series)/instances/\(photo.instance)"
        try await archive.app.test(.router) { client in
            // Lossy JPEG photos keep their transfer syntax; the bytes are exactly what was stored.
            try await client.execute(uri: "/dicomweb/studies/\(photo.study)", method: .get) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body).prefix(300))")
                let found = try parts(response)
                #expect(found.count == 1 && found[0].body == photo.bytes)
                #expect(found[0].headers.contains("transfer-syntax=1.2.840.10008.1.2.4.50"))
            }
            try await client.execute(uri: base, method: .get, headers: headers([(.accept, "application/dicom")])) {
                response in
                #expect(Data(response.body.readableBytesView) == photo.bytes)
            }
            try await client.execute(
                uri: base, method: .get,
                headers: headers([
                    (.accept, "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.70")
                ])
            ) { response in #expect(response.status == .notAcceptable) }
            try await client.execute(uri: "/dicomweb/studies/1.2.3", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: base, method: .get, headers: headers([(.accept, "image/png")])) { response in
                #expect(response.status == .notAcceptable)
            }
            // Metadata: bulk values by absolute BulkDataURI; frames; rendered and thumbnail.
            try await client.execute(uri: base + "/metadata", method: .get) { response in
                let objects = try #require(try json(response.body) as? [[String: Any]])
                let pixel = objects[0]["7FE00010"] as? [String: Any]
                #expect(pixel?["BulkDataURI"] as? String == "https://archive.example\(base)/bulkdata/7FE00010")
                #expect((objects[0]["00100010"] as? [String: Any]) != nil)
            }
            try await client.execute(
                uri: base + "/frames/1", method: .get,
                headers: headers([(.accept, "multipart/related; type=\"image/jpeg\"")])
            ) { response in
                let frame = try parts(response)
                #expect(frame.count == 1 && frame[0].body.starts(with: [0xFF, 0xD8]))
            }
            try await client.execute(
                uri: base + "/rendered?quality=50&viewport=64,64", method: .get,
                headers: headers([(.accept, "image/png")])
            ) { response in
                #expect(response.headers[.contentType] == "image/png")
                let png = Data(response.body.readableBytesView)
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
                // IHDR: the image fits in 64 x 64.
                let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }
                let height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
                #expect(max(width, height) == 64)
            }
            try await client.execute(uri: "/dicomweb/studies/\(photo.study)/thumbnail", method: .get) { response in
                #expect(response.headers[.contentType] == "image/jpeg")
                #expect(Data(response.body.readableBytesView).starts(with: [0xFF, 0xD8]))
            }
            try await client.execute(uri: base + "/rendered?viewport=0,10", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: base + "/frames/0", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            let many = (1...1001).map(String.init).joined(separator: ",")
            try await client.execute(uri: base + "/frames/\(many)", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(
                uri: base + "/frames/2", method: .get,
                headers: headers([(.accept, "multipart/related; type=\"image/jpeg\"")])
            ) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func encapsulatedOBJBulkDataIsTheOriginalFile() async throws {
        let archive = try await TestArchive()
        let context = InstanceContext(metadata: TestArchive.metadata(), uids: try UIDGenerator())
        let objURL = TestArchive.root.appendingPathComponent("meshes/face/face.obj")
        let prepared = try MeshConverter.convertOBJ(
            at: objURL, context: context, seriesNumber: 1, textureSeriesNumber: 2)
        for instance in prepared {
            guard
                case .stored = await archive.service.store(
                    try Part10.encode(instance.dataset, transferSyntax: instance.transferSyntaxUID))
            else { throw HTTPFailure(.badRequest, "not stored") }
        }
        let obj = try #require(prepared.first { $0.sopClassUID == UID.encapsulatedOBJStorage })
        let series = try #require(obj.dataset.string(.seriesInstanceUID))
        let base = "/dicomweb/studies/\(context.studyInstanceUID)/series/\(series)/instances/\(obj.sopInstanceUID)"
        let original = try Data(contentsOf: objURL)
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: base + "/bulkdata/00420011", method: .get, headers: headers([(.accept, "model/obj")])
            ) {
                response in
                #expect(response.headers[.contentType] == "model/obj")
                #expect(Data(response.body.readableBytesView) == original)
            }
            try await client.execute(
                uri: base + "/bulkdata/00420011", method: .get,
                headers: headers([(.accept, "multipart/related; type=\"application/octet-stream\"")])
            ) { response in
                let found = try parts(response)
                #expect(found.first?.body == original)
            }
            try await client.execute(
                uri:
                    "/dicomweb/studies/\(context.studyInstanceUID)/series?ModelGroupUID=\(obj.dataset.string(.modelGroupUID)!)"
                    + "&includefield=00420012",
                method: .get
            ) { response in
                let found = try #require(try json(response.body) as? [[String: Any]])
                #expect(found.count == 1)
            }
            try await client.execute(uri: "/dicomweb/instances?MIMETypeOfEncapsulatedDocument=model/mtl", method: .get)
            {
                response in
                let found = try #require(try json(response.body) as? [[String: Any]])
                #expect(found.count == 1)
            }
            try await client.execute(uri: base + "/rendered", method: .get) { response in
                #expect(response.status == .notAcceptable)
            }
        }
    }
}
