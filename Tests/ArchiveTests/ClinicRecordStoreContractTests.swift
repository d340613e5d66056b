import Foundation
import Testing

@testable import Archive

/// The contract of `ClinicRecordStore`, on SQLite and PostgreSQL: versions are added, never rewritten; a writer
/// that read an old version is refused; listings see current, undeleted versions; bodies are sealed to their row.
@Suite struct ClinicRecordStoreContractTests {
    func store(_ place: IndexKind.Place) async throws -> any ClinicRecordStore {
        let index = try await place.open()
        if let postgres = index as? PostgresStudyIndex { return PostgresClinicRecordStore(index: postgres) }
        return SQLiteClinicRecordStore(index: try #require(index as? SQLiteStudyIndex), tenant: place.tenant)
    }

    let patientA = String(repeating: "a", count: 64)
    let patientB = String(repeating: "b", count: 64)

    @Test(arguments: IndexKind.available)
    func versionsAreAddedAndAStaleWriterIsRefused(_ kind: IndexKind) async throws {
        let place = try kind.place()
        let records = try await store(place)
        let first = try await records.write(
            .treatment, id: "t1", patient: patientA, parent: nil, body: Data("{\"service\":\"Botox\"}".utf8),
            actor: "dr.a", deleted: false, expectedVersion: 0)
        #expect(first.version == 1)
        await #expect(throws: ArchiveError.self) {
            _ = try await records.write(
                .treatment, id: "t1", patient: patientA, parent: nil, body: Data("{}".utf8), actor: "dr.b",
                deleted: false, expectedVersion: 0)
        }
        let second = try await records.write(
            .treatment, id: "t1", patient: patientA, parent: nil, body: Data("{\"service\":\"Filler\"}".utf8),
            actor: "dr.b", deleted: false, expectedVersion: 1)
        #expect(second.version == 2)
        do {
            _ = try await records.write(
                .treatment, id: "t1", patient: patientA, parent: nil, body: Data("{}".utf8), actor: "dr.c",
                deleted: false, expectedVersion: 1)
            Issue.record("a writer that read version 1 must be refused")
        } catch {
            #expect(error.code == .conflict)
        }
        let current = try #require(try await records.current(.treatment, id: "t1"))
        #expect(
            current.version == 2 && current.body == Data("{\"service\":\"Filler\"}".utf8) && current.actor == "dr.b")
        let history = try await records.versions(.treatment, id: "t1")
        #expect(history.map(\.version) == [1, 2])
        #expect(history.first?.body == Data("{\"service\":\"Botox\"}".utf8))
        #expect(try await records.current(.treatment, id: "none") == nil)
        #expect(try await records.current(.consent, id: "t1") == nil, "kinds do not share ids")
        // A reopen (a restart, another replica) reads the same.
        let again = try await store(place)
        #expect(try await again.versions(.treatment, id: "t1").map(\.version) == [1, 2])
    }

    @Test(arguments: IndexKind.available)
    func listingsSeeCurrentUndeletedVersionsByPatientAndParent(_ kind: IndexKind) async throws {
        let records = try await store(try kind.place())
        _ = try await records.write(
            .tags, id: "1.2.3", patient: patientA, parent: "1.2.3", body: Data("{}".utf8), actor: "a",
            deleted: false, expectedVersion: 0)
        _ = try await records.write(
            .tags, id: "1.2.3", patient: patientA, parent: "1.2.3", body: Data("{\"v\":2}".utf8), actor: "a",
            deleted: false, expectedVersion: 1)
        _ = try await records.write(
            .tags, id: "1.2.4", patient: patientB, parent: "1.2.4", body: Data("{}".utf8), actor: "a",
            deleted: false, expectedVersion: 0)
        _ = try await records.write(
            .annotation, id: "l1", patient: patientA, parent: "1.2.3", body: Data("{}".utf8), actor: "a",
            deleted: false, expectedVersion: 0)
        _ = try await records.write(
            .annotation, id: "l1", patient: patientA, parent: "1.2.3", body: Data("{}".utf8), actor: "a",
            deleted: true, expectedVersion: 1)
        let ofA = try await records.records(.tags, patient: patientA, parent: nil)
        #expect(ofA.map(\.id) == ["1.2.3"] && ofA.first?.body == Data("{\"v\":2}".utf8))
        #expect(Set(try await records.records(.tags, patient: nil, parent: nil).map(\.id)) == ["1.2.3", "1.2.4"])
        #expect(try await records.records(.tags, patient: nil, parent: "1.2.4").map(\.patient) == [patientB])
        #expect(try await records.records(.annotation, patient: patientA, parent: "1.2.3").isEmpty, "deleted")
        #expect(try await records.current(.annotation, id: "l1")?.deleted == true)
    }

    @Test(arguments: IndexKind.available)
    func concurrentWritersOfOneVersionYieldExactlyOneWinner(_ kind: IndexKind) async throws {
        let records = try await store(try kind.place())
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for writer in 0..<6 {
                group.addTask {
                    (try? await records.write(
                        .consent, id: "c1", patient: patientA, parent: nil, body: Data("\(writer)".utf8),
                        actor: "w\(writer)", deleted: false, expectedVersion: 0)) != nil
                }
            }
            var won: [Bool] = []
            for await outcome in group { won.append(outcome) }
            return won
        }
        #expect(outcomes.filter { $0 }.count == 1)
        #expect(try await records.versions(.consent, id: "c1").count == 1)
    }

    @Test func bodiesAreSealedToTheirRow() async throws {
        let place = try IndexKind.sqlite.place()
        let records = try await store(place)
        _ = try await records.write(
            .treatment, id: "t9", patient: patientA, parent: nil,
            body: Data("{\"notes\":\"Jane Doe, left cheek\"}".utf8), actor: "dr.a", deleted: false,
            expectedVersion: 0)
        let file = try Data(contentsOf: place.folder.appendingPathComponent("index.sqlite"))
        let wal = (try? Data(contentsOf: place.folder.appendingPathComponent("index.sqlite-wal"))) ?? Data()
        #expect(file.range(of: Data("Jane Doe".utf8)) == nil && wal.range(of: Data("Jane Doe".utf8)) == nil)
        // A sealed body moved to another patient's row does not open.
        let index = try #require(try await place.open() as? SQLiteStudyIndex)
        try await index.pool.write { db in
            try db.execute(sql: "UPDATE clinic_records SET patient_key = ? WHERE id = 't9'", arguments: [patientB])
        }
        await #expect(throws: ArchiveError.self) { _ = try await records.current(.treatment, id: "t9") }
    }
}
