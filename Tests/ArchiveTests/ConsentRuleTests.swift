import Foundation
import Testing

@testable import Archive

/// The consent rule (issue 12 §2) against an oracle written apart from it, in whole days and seconds: 10,000
/// generated cases of photos, consents and instants (the clock is the case's own), then properties a withdrawal
/// and the marketing tag must keep.
@Suite struct ConsentRuleTests {
    /// SplitMix64: the same cases on every run.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int {
            range.lowerBound + Int(next() % UInt64(range.count))
        }
        mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    }

    /// One consent as the oracle sees it: whole days since 1970, a withdrawal second.
    struct Raw {
        var id: String
        var patient: String
        var kind: Consent.Kind
        var channels: [Consent.Channel]
        var scope: Consent.Scope
        var signedDay: Int
        var expiresDay: Int?
        var withdrawnAt: Int?
    }

    static let day = 86_400
    static func date(_ day: Int) -> String { ClinicTerms.day(of: Date(timeIntervalSince1970: Double(day * Self.day))) }

    static func oracle(
        uid: String, patient: String, approved: Bool, treatment: String?, channel: Consent.Channel, at t: Int,
        _ consents: [Raw]
    ) -> [String] {
        guard approved else { return [] }
        return consents.filter { c in
            let active =
                t >= c.signedDay * day && (c.expiresDay.map { t < ($0 + 1) * day } ?? true)
                && (c.withdrawnAt.map { t < $0 } ?? true)
            let covered: Bool
            switch c.scope {
            case .all: covered = true
            case .instances(let uids): covered = uids.contains(uid)
            case .treatment(let id): covered = id == treatment
            }
            return c.patient == patient && c.kind == .marketing && c.channels.contains(channel) && active && covered
        }.map(\.id).sorted()
    }

    @Test func theRuleMatchesTheOracleOnTenThousandGeneratedCases() {
        var random = Generator(state: 12)
        let uids = ["1.2.1", "1.2.2", "1.2.3"]
        let treatments = ["t1", "t2"]
        var allowed = 0
        for _ in 0..<10_000 {
            let base = 20_000 + random.int(0...400)
            var raws: [Raw] = []
            for number in 0..<random.int(0...5) {
                let signed = base + random.int(-30...30)
                let scope: Consent.Scope =
                    switch random.int(0...2) {
                    case 0: .all
                    case 1: .instances(uids.filter { _ in random.chance(50) })
                    default: .treatment(treatments[random.int(0...1)])
                    }
                raws.append(
                    Raw(
                        id: "c\(number)", patient: random.chance(80) ? "p1" : "p2",
                        kind: random.chance(85) ? .marketing : (random.chance(50) ? .clinical : .disclosure),
                        channels: Consent.Channel.allCases.filter { _ in random.chance(60) }, scope: scope,
                        signedDay: signed, expiresDay: random.chance(40) ? signed + random.int(0...120) : nil,
                        withdrawnAt: random.chance(20) ? signed * Self.day + random.int(0...(90 * Self.day)) : nil))
            }
            // Instants near the edges of the days matter most: midnight, a second before, a second after.
            let t =
                (base + random.int(-20...60)) * Self.day
                + [0, -1, 1, random.int(0...(Self.day - 1))][random.int(0...3)]
            let photo = ConsentRule.Photo(
                sopInstanceUID: uids[random.int(0...2)], patient: random.chance(80) ? "p1" : "p2",
                quality: random.chance(70) ? .marketingApproved : (random.chance(50) ? .clinical : nil),
                treatment: random.chance(60) ? treatments[random.int(0...1)] : nil)
            let channel = Consent.Channel.allCases[random.int(0...(Consent.Channel.allCases.count - 1))]
            let held = raws.map { raw in
                ConsentRule.Held(
                    id: raw.id, patient: raw.patient,
                    consent: Consent(
                        kind: raw.kind, channels: raw.channels, scope: raw.scope, signer: "Signer",
                        signedDate: Self.date(raw.signedDay), expires: raw.expiresDay.map(Self.date),
                        withdrawal: raw.withdrawnAt.map {
                            Consent.Withdrawal(date: Date(timeIntervalSince1970: Double($0)), by: "pm")
                        }))
            }
            let expected = Self.oracle(
                uid: photo.sopInstanceUID, patient: photo.patient, approved: photo.quality == .marketingApproved,
                treatment: photo.treatment, channel: channel, at: t, raws)
            let decision = ConsentRule.decide(
                photo, channel: channel, at: Date(timeIntervalSince1970: Double(t)), consents: held)
            #expect(decision.allowed == !expected.isEmpty)
            #expect(decision.consentIDs == expected)
            #expect(decision.allowed == (decision.reason == nil))
            if decision.allowed {
                allowed += 1
                // Withdrawing every consent at or before T leaves nothing that allows it.
                let withdrawn = held.map { h -> ConsentRule.Held in
                    var copy = h
                    copy.consent.withdrawal = Consent.Withdrawal(date: Date(timeIntervalSince1970: Double(t)), by: "x")
                    return copy
                }
                #expect(
                    !ConsentRule.decide(
                        photo, channel: channel, at: Date(timeIntervalSince1970: Double(t)), consents: withdrawn
                    ).allowed)
                // Without the marketing tag the same photo never leaves.
                var untagged = photo
                untagged.quality = .clinical
                #expect(
                    !ConsentRule.decide(
                        untagged, channel: channel, at: Date(timeIntervalSince1970: Double(t)), consents: held
                    ).allowed)
            }
        }
        // Both answers are well represented, so the comparison above means something.
        #expect(allowed > 500 && allowed < 9_500, "allowed \(allowed) of 10000")
    }

    @Test func aConsentHoldsFromItsSignedDayThroughItsLastDay() throws {
        let consent = Consent(
            kind: .marketing, channels: [.website], scope: .all, signer: "J", signedDate: "2026-03-01",
            expires: "2026-03-31")
        func at(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
        #expect(!consent.isActive(at: at("2026-02-28T23:59:59Z")))
        #expect(consent.isActive(at: at("2026-03-01T00:00:00Z")))
        #expect(consent.isActive(at: at("2026-03-31T23:59:59Z")))
        #expect(!consent.isActive(at: at("2026-04-01T00:00:00Z")))
    }

    @Test func requestBodiesAreCheckedFieldByField() throws {
        func decode(_ text: String) throws -> Consent { try Consent.decode(json: Data(text.utf8)) }
        let ok = try decode(
            #"{"kind":"marketing","channels":["website","Social"],"scope":{"instances":["1.2.3"]},"signer":"Jane","signedDate":"20260301","expires":"2027-03-01"}"#
        )
        #expect(
            ok.channels == [.website, .social] && ok.scope == .instances(["1.2.3"]) && ok.signedDate == "2026-03-01")
        for bad in [
            #"{"kind":"marketing","scope":"all","signer":"J","signedDate":"2026-03-01"}"#,
            #"{"kind":"clinical","channels":["website"],"signer":"J","signedDate":"2026-03-01"}"#,
            #"{"kind":"marketing","channels":["fax"],"signer":"J","signedDate":"2026-03-01"}"#,
            #"{"kind":"marketing","channels":["website"],"signer":"J","signedDate":"2026-02-30"}"#,
            #"{"kind":"marketing","channels":["website"],"signer":"J","signedDate":"2026-03-01","expires":"2026-02-01"}"#,
            #"{"kind":"disclosure","signer":"J","signedDate":"2026-03-01"}"#,
            #"{"kind":"marketing","channels":["website"],"scope":{"instances":["01.2"]},"signer":"J","signedDate":"2026-03-01"}"#,
            #"{"kind":"marketing","channels":["website"],"signer":"J","signedDate":"2026-03-01","extra":1}"#,
        ] {
            #expect(throws: ArchiveError.self, "\(bad)") { _ = try decode(bad) }
        }
    }
}
