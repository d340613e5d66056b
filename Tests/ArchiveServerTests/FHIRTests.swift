import Archive
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import ArchiveServer

/// FHIR under the access policy: a medical assistant outside the care team finds no study and may not read one;
/// inside it, the same study is found; a front-desk account may not search at all.
@Suite struct FHIRTests {
    @Test func theCareTeamDecidesWhatFHIRShows() async throws {
        var archive = try await TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored = await archive.service.store(photo.bytes) else { throw HTTPFailure(.badRequest, "photo") }
        archive.token = try await archive.token(for: .medicalAssistant, username: "ma")
        try await archive.app.test(.router) { client in
            try await client.execute(uri: "/fhir/r4/ImagingStudy", method: .get) { response in
                #expect(response.status == .ok)
                let bundle = try #require(try json(response.body) as? [String: Any])
                #expect(bundle["total"] as? Int == 0)
            }
            try await client.execute(uri: "/fhir/r4/ImagingStudy/\(photo.study)", method: .get) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
                let outcome = try #require(try json(response.body) as? [String: Any])
                #expect(outcome["resourceType"] as? String == "OperationOutcome")
            }
        }
        let key = try #require(archive.identity.patient("P-1", issuer: nil, tenant: "default"))
        try await archive.identity.store.setCareTeam(tenant: "default", patient: key, members: ["ma"])
        try await archive.app.test(.router) { client in
            try await client.execute(uri: "/fhir/r4/ImagingStudy?patient=Patient/\(key.hex)", method: .get) {
                response in
                let bundle = try #require(try json(response.body) as? [String: Any])
                #expect(bundle["total"] as? Int == 1)
            }
            try await client.execute(uri: "/fhir/r4/ImagingStudy/\(photo.study)", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
        archive.token = try await archive.token(for: .frontDesk)
        try await archive.app.test(.router) { client in
            try await client.execute(uri: "/fhir/r4/Patient", method: .get) { response in
                #expect(response.status == .forbidden)
            }
        }
    }
}
