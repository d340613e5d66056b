import Foundation
import Testing

@testable import Archive

/// The retention rule (issue 12 §4): the longer of federal and state, never under the clinic's minimum, minors kept
/// until the state's age, leap days.
@Suite struct RetentionTests {
    @Test func theLongestRuleDecides() throws {
        let california = RetentionPolicy(state: "CA", minimumYears: 10)
        #expect(california.dueDate(lastVisit: "2016-05-01", birthDate: "1980-01-01")! == ("2026-05-01", "CA 10 y"))
        let florida = RetentionPolicy(state: "FL", minimumYears: 0)
        #expect(florida.dueDate(lastVisit: "2020-01-10", birthDate: nil)! == ("2026-01-10", "federal 6 y"))
        let strict = RetentionPolicy(state: "TX", minimumYears: 12)
        #expect(strict.dueDate(lastVisit: "2020-01-10", birthDate: nil)! == ("2032-01-10", "clinic minimum 12 y"))
        #expect(RetentionPolicy().dueDate(lastVisit: nil, birthDate: nil) == nil)
    }

    @Test func minorsAreKeptUntilTheStatesAge() throws {
        let carolina = RetentionPolicy(state: "NC", minimumYears: 0)
        // A ten-year-old at the last visit: until 30, far beyond 11 years.
        #expect(
            carolina.dueDate(lastVisit: "2020-06-01", birthDate: "2010-03-01")! == ("2040-03-01", "NC minors until 30"))
        // An adult at the last visit: the adult rule.
        #expect(carolina.dueDate(lastVisit: "2020-06-01", birthDate: "1990-03-01")! == ("2031-06-01", "NC 11 y"))
        // Born on 29 February: the 19th birthday in a common year is 1 March.
        let california = RetentionPolicy(state: "CA", minimumYears: 0)
        #expect(
            california.dueDate(lastVisit: "2012-01-01", birthDate: "2008-02-29")! == (
                "2027-03-01", "CA minors until 19"
            ))
        #expect(RetentionPolicy.format(2028, 2, 29) == "2028-02-29")
    }

    @Test func policiesAreChecked() throws {
        #expect(
            try RetentionPolicy.decode(json: Data(#"{"state":"ny","minimumYears":7}"#.utf8))
                == RetentionPolicy(state: "NY", minimumYears: 7))
        for bad in [#"{"state":"ZZ"}"#, #"{"minimumYears":-1}"#, #"{"minimumYears":2.5}"#, #"{"years":3}"#] {
            #expect(throws: ArchiveError.self, "\(bad)") { _ = try RetentionPolicy.decode(json: Data(bad.utf8)) }
        }
    }
}
