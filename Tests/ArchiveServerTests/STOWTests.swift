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

@Suite struct STOWTests {
    @Test func storesReportsAndRefusesAsPS318Says() async throws {
        let archive = try await TestArchive()
        let first = try TestArchive.photo()
        let other = try TestArchive.photo(TestArchive.metadata(patient: "Roe^Rick", id: "P-2"))
        try await archive.app.test(.router) { client in
            // 200: stored, with RetrieveURL under the public base URL.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([first.bytes])
            ) { response in
                #expect(response.status == .ok)
                let object = try #require(try json(response.body) as? [String: Any])
                let items = try #require((object["00081199"] as? [String: Any])?["Value"] as? [[String: Any]])
                #expect(items.count == 1)
                let url = (items[0]["00081190"] as? [String: Any])?["Value"] as? [String]
                #expect(
                    url?.first?.hasPrefix("https://archive.example/dicomweb/studies/\(first.study)/series/") == true)
                #expect(object["00081198"] == nil)
            }
            // The same bytes again: success, nothing new. Same UID, other bytes: 409 with 0x0111.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([first.bytes])
            ) { response in #expect(response.status == .ok) }
            var bytes = first.bytes
            bytes[bytes.count - 3] ^= 0x01
            let changed = bytes
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([changed])
            ) { response in
                #expect(response.status == .conflict)
                let object = try #require(try json(response.body) as? [String: Any])
                let failed = try #require((object["00081198"] as? [String: Any])?["Value"] as? [[String: Any]])
                #expect((failed[0]["00081197"] as? [String: Any])?["Value"] as? [Int] == [0x0111])
            }
            // Wrong study in the URL: 409; a garbage part next to a good one: 202 naming the failure.
            try await client.execute(
                uri: "/dicomweb/studies/1.2.3.4", method: .post,
                headers: headers([(.contentType, TestArchive.stowType)]), body: TestArchive.multipart([other.bytes])
            ) { response in #expect(response.status == .conflict) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post,
                headers: headers([(.contentType, "multipart/related; type=application/dicom; boundary=\"b0undary\"")]),
                body: TestArchive.multipart([Data("not dicom".utf8), other.bytes])
            ) { response in
                #expect(response.status == .accepted)
                let object = try #require(try json(response.body) as? [String: Any])
                let failed = try #require((object["00081198"] as? [String: Any])?["Value"] as? [[String: Any]])
                #expect((failed[0]["00081197"] as? [String: Any])?["Value"] as? [Int] == [0xC000])
                #expect(response.headers[.warning]?.contains("part 1") == true)
            }
            // Only garbage: 400. Not multipart: 415. Unterminated body: 400.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([Data("garbage".utf8)])
            ) { response in #expect(response.status == .badRequest) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, "application/dicom")]),
                body: ByteBuffer(bytes: first.bytes)
            ) { response in #expect(response.status == .unsupportedMediaType) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: ByteBuffer(string: "--b0undary\r\nContent-Type: application/dicom\r\n\r\nabc")
            ) { response in #expect(response.status == .badRequest) }
        }
        #expect(archive.service.index.catalog().instances.count == 2)
    }

    @Test func newVersionPolicyKeepsTheOldBytesAside() async throws {
        let archive = try await TestArchive(duplicates: .newVersion)
        let first = try TestArchive.photo()
        var bytes = first.bytes
        bytes[bytes.count - 3] ^= 0x01
        let changed = bytes
        try await archive.app.test(.router) { client in
            for body in [first.bytes, changed] {
                try await client.execute(
                    uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                    body: TestArchive.multipart([body])
                ) { response in #expect(response.status == .ok) }
            }
        }
        let record = try #require(archive.service.index.instance(first.instance))
        #expect(try await archive.service.read(record) == changed)
        #expect(try await archive.service.index.referencedBlobIDs().count == 2)
    }
}
