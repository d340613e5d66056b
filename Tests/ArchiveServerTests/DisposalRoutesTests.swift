import Archive
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import ArchiveServer

/// Disposal over HTTP (issue 12 §4): only a due patient without a legal hold, asked for by one practice manager and
/// carried out by another, answered with a certificate; the patient is gone, the others stay, and the archive
/// starts again and serves.
@Suite struct DisposalRoutesTests {
    typealias Call = ClinicRecordsTests

    /// P-OLD last seen in 2010 (due under the federal six years), P-NEW a week ago.
    static func storePatients(_ archive: TestArchive) async throws -> (old: String, new: String) {
        var uids: [String] = []
        // A week ago: due under no policy.
        let recent = ClinicTerms.day(of: Date().addingTimeInterval(-7 * 86_400)).replacingOccurrences(of: "-", with: "")
        for (id, name, date) in [("P-OLD", "Old^Olga", "20100105"), ("P-NEW", "New^Nina", recent)] {
            let photo = try TestArchive.photo(TestArchive.metadata(patient: name, id: id, date: date))
            guard case .stored = await archive.service.store(photo.bytes) else { throw HTTPFailure(.badRequest, id) }
            uids.append(photo.instance)
        }
        return (uids[0], uids[1])
    }

    @Test func aDuePatientIsDisposedOfByTwoManagersWithACertificate() async throws {
        let folder: URL
        let id: String
        let second: String
        let new: String
        do {
            var archive = try await TestArchive()
            folder = archive.folder
            let (old, newUID) = try await Self.storePatients(archive)
            new = newUID
            // A physician may not ask for a disposal.
            try await archive.app.test(.router) { client in
                let status = try await Call.call(client, .post, "/api/v1/patients/P-OLD/disposal", [:]).status
                #expect(status == .forbidden)
            }
            _ = try await archive.token(for: .nurse, username: "nurse-early")
            second = try await archive.token(for: .practiceManager, username: "manager-two")
            archive.token = try await archive.token(for: .practiceManager, username: "manager-one")
            id = try await archive.app.test(.router) { client in
                #expect(
                    try await Call.call(client, .put, "/api/v1/retention/policy", ["state": "FL", "minimumYears": 0])
                        .status == .ok)
                // Not due yet, or held: refused, nothing written.
                #expect(try await Call.call(client, .post, "/api/v1/patients/P-NEW/disposal", [:]).status == .conflict)
                #expect(
                    try await Call.call(client, .put, "/api/v1/patients/P-OLD/legal-hold", ["reason": "lawsuit"]).status
                        == .ok)
                #expect(try await Call.call(client, .post, "/api/v1/patients/P-OLD/disposal", [:]).status == .conflict)
                #expect(try await Call.call(client, .delete, "/api/v1/patients/P-OLD/legal-hold").status == .noContent)
                #expect(
                    try await Call.call(client, .post, "/api/v1/patients/P-OLD/disposal", ["extra": 1]).status
                        == .badRequest)
                #expect(
                    try await Call.call(client, .post, "/api/v1/patients/P-NOBODY/disposal", [:]).status == .notFound)

                var reply = try await Call.call(
                    client, .post, "/api/v1/patients/P-OLD/disposal", ["reason": "retention ended"])
                #expect(reply.status == .created && reply.object["status"] as? String == "pending")
                #expect(reply.object["dueDate"] as? String == "2016-01-05")
                let id = try #require(reply.object["id"] as? String)
                #expect(try await Call.call(client, .post, "/api/v1/patients/P-OLD/disposal", [:]).status == .conflict)
                // The one who asked may not approve.
                reply = try await Call.call(client, .post, "/api/v1/disposals/\(id)/approve")
                #expect(reply.status == .forbidden)
                #expect(try await Call.call(client, .get, "/api/v1/patients/P-OLD").status == .ok)
                #expect(try await Call.call(client, .post, "/api/v1/disposals/nope/approve").status == .notFound)
                return id
            }
            // A practice-manager account made after the request is not a second person, nor is an older account
            // promoted to practice manager after it.
            archive.token = try await archive.token(for: .practiceManager, username: "manager-late")
            try await archive.app.test(.router) { client in
                let reply = try await Call.call(client, .post, "/api/v1/disposals/\(id)/approve")
                #expect(reply.status == .forbidden)
                #expect(try await Call.call(client, .get, "/api/v1/patients/P-OLD").status == .ok)
            }
            try await archive.identity.administration.setRole(
                tenant: "default", username: "nurse-early", role: .practiceManager)
            archive.token = try await archive.identity.tokens.issue(
                tenant: "default", username: "nurse-early", role: .practiceManager
            ).accessToken
            try await archive.app.test(.router) { client in
                let reply = try await Call.call(client, .post, "/api/v1/disposals/\(id)/approve")
                #expect(reply.status == .forbidden)
                #expect(String(describing: reply.object["error"] ?? reply.object).contains("two-person rule"))
                #expect(try await Call.call(client, .get, "/api/v1/patients/P-OLD").status == .ok)
            }
            archive.token = second
            try await archive.app.test(.router) { client in
                var reply = try await Call.call(client, .post, "/api/v1/disposals/\(id)/approve")
                #expect(reply.status == .ok && reply.object["status"] as? String == "completed")
                #expect(reply.object["approvedBy"] as? String == "default/manager-two")
                let certificate = try #require(reply.object["certificate"] as? [String: Any])
                #expect(certificate["technique"] as? String == "purge by cryptographic erase")
                #expect(certificate["standard"] as? String == "NIST SP 800-88 Rev. 1")
                #expect(certificate["instances"] as? Int == 1 && certificate["blobs"] as? Int == 1)
                #expect((certificate["destroyedKeyID"] as? String)?.count == 32)
                #expect(!String(describing: reply.body ?? "").contains("Olga"), "the certificate names no one")
                // Done once: a second approval is refused; the patient is gone, the other one stays.
                #expect(try await Call.call(client, .post, "/api/v1/disposals/\(id)/approve").status == .conflict)
                #expect(try await Call.call(client, .get, "/api/v1/patients/P-OLD").status == .notFound)
                #expect(try await Call.call(client, .get, "/api/v1/patients/P-NEW").status == .ok)
                reply = try await Call.call(client, .get, "/api/v1/disposals")
                #expect((reply.object["disposals"] as? [[String: Any]])?.first?["status"] as? String == "completed")
                let audit = try await Call.call(client, .get, "/api/v1/audit")
                let actions = (audit.object["entries"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
                #expect(
                    actions.contains { $0.hasPrefix("disposal \(id) (patient ") && $0.contains("cryptographic erase") })
            }
            #expect(archive.service.index.instance(old) == nil)
            #expect(archive.service.index.instance(new) != nil)
        }

        // After a restart the archive serves, the certificate is kept, the patient stays gone.
        // The first server's tasks may hold the folder's lock for a moment after its last request.
        var archive = try await TestArchive(reopening: folder)
        archive.token = second
        try await archive.app.test(.router) { client in
            let reply = try await Call.call(client, .get, "/api/v1/disposals/\(id)")
            #expect(reply.status == .ok && reply.object["certificate"] != nil)
            #expect(try await Call.call(client, .get, "/api/v1/patients/P-OLD").status == .notFound)
        }
        #expect(archive.service.index.instance(new) != nil)
    }

    @Test func aPendingDisposalCanBeCancelled() async throws {
        var archive = try await TestArchive()
        _ = try await Self.storePatients(archive)
        archive.token = try await archive.token(for: .practiceManager, username: "manager-one")
        try await archive.app.test(.router) { client in
            _ = try await Call.call(client, .put, "/api/v1/retention/policy", ["state": "FL", "minimumYears": 0])
            // Without a second practice manager nobody could approve it: refused at once.
            let alone = try await Call.call(client, .post, "/api/v1/patients/P-OLD/disposal", [:])
            #expect(alone.status == .conflict)
        }
        _ = try await archive.token(for: .practiceManager, username: "manager-two")
        try await archive.app.test(.router) { client in
            let id = try #require(
                try await Call.call(client, .post, "/api/v1/patients/P-OLD/disposal", [:]).object["id"] as? String)
            let reply = try await Call.call(client, .post, "/api/v1/disposals/\(id)/cancel")
            #expect(reply.status == .ok && reply.object["cancelledBy"] as? String == "default/manager-one")
            #expect(try await Call.call(client, .post, "/api/v1/disposals/\(id)/cancel").status == .conflict)
            #expect(try await Call.call(client, .get, "/api/v1/patients/P-OLD").status == .ok)
        }
    }
}
