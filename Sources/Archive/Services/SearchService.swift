import DICOMCore
import Foundation

/// QIDO-RS over the index's catalog (PS3.18 10.6): the six search resources, matching on every level the
/// resource allows (attributes of lower levels match when some series or instance has them), the return
/// attributes of Tables 10.6.3-3/4/5, study and series aggregates, a stable order and paging.
public struct SearchService: Sendable {
    /// What is searched: the level of the results and the parents fixed by the URL.
    public struct Resource: Sendable {
        public var level: QueryLevel
        public var study: String?
        public var series: String?

        public init(level: QueryLevel, study: String? = nil, series: String? = nil) {
            self.level = level
            self.study = study
            self.series = series
        }
    }

    public struct Result: Sendable {
        public var datasets: [Dataset]
        /// More results match than were returned.
        public var truncated: Bool
    }

    public let index: any StudyIndex
    public let baseURL: String
    public let maximumResults: Int

    public init(index: any StudyIndex, baseURL: String, maximumResults: Int) {
        self.index = index
        self.baseURL = baseURL
        self.maximumResults = maximumResults
    }

    static let modalitiesInStudy = Tag(0x0008, 0x0061)
    static let sopClassesInStudy = Tag(0x0008, 0x0062)
    static let instanceAvailability = Tag(0x0008, 0x0056)
    static let retrieveURL = Tag(0x0008, 0x1190)
    static let numberOfStudyRelatedSeries = Tag(0x0020, 0x1206)
    static let numberOfStudyRelatedInstances = Tag(0x0020, 0x1208)
    static let numberOfSeriesRelatedInstances = Tag(0x0020, 0x1209)
    static let availableTransferSyntaxUID = Tag(0x0008, 0x3002)

    static let studyReturn: [Tag] = [
        .studyDate, .studyTime, .accessionNumber, modalitiesInStudy, .referringPhysicianName, .patientName,
        .patientID, .patientBirthDate, .patientSex, .studyID, .studyInstanceUID, .studyDescription,
    ]
    static let seriesReturn: [Tag] = [
        .modality, .seriesNumber, .seriesInstanceUID, .seriesDescription, .bodyPartExamined, .laterality,
        Tag(0x0040, 0x0244), Tag(0x0040, 0x0245),
    ]
    static let instanceReturn: [Tag] = [
        .sopClassUID, .sopInstanceUID, .instanceNumber, .rows, .columns, .bitsAllocated, .numberOfFrames,
        .mimeTypeOfEncapsulatedDocument, .modelGroupUID, .documentTitle, .imageLaterality,
    ]
    /// Required (Type R) return attributes, sent empty when the instance has no value.
    static let required: Set<Tag> = [
        .studyDate, .studyTime, .accessionNumber, .referringPhysicianName, .patientName, .patientID,
        .patientBirthDate, .patientSex, .studyID, .modality, .seriesNumber, .sopClassUID, .instanceNumber,
    ]

    /// Searches `resource` for `query`. `visible` says which studies the caller may see (its access policy); the
    /// others are left out before anything is matched, counted or paged, so the answer never hints at them.
    public func search(
        _ query: Query, _ resource: Resource, visible: (StudyRecord) -> Bool = { _ in true }
    ) async throws(ArchiveError) -> Result {
        let catalog = index.catalog()
        var keysByLevel: [QueryLevel: [QueryKey]] = [:]
        for key in query.keys { keysByLevel[key.level, default: []].append(key) }
        // Aggregates answer study-level keys of their own.
        let modalityKeys = (keysByLevel[.study] ?? []).filter { $0.path == [Self.modalitiesInStudy] && !$0.isUniversal }
        let sopClassKeys = (keysByLevel[.study] ?? []).filter { $0.path == [Self.sopClassesInStudy] && !$0.isUniversal }
        let studyKeys = (keysByLevel[.study] ?? []).filter {
            $0.path != [Self.modalitiesInStudy] && $0.path != [Self.sopClassesInStudy]
        }
        let seriesKeys = keysByLevel[.series] ?? []
        let instanceKeys = keysByLevel[.instance] ?? []

        // Exact PatientID / AccessionNumber narrow through the keyed blind indexes.
        var allowedStudies: Set<String>? = resource.study.map { [$0] }
        for key in studyKeys
        where key.path.count == 1 && !key.isUniversal && !key.value.contains(where: { $0 == "*" || $0 == "?" }) {
            if key.path[0] == .patientID {
                let found = Set(try await index.studyUIDs(patientID: key.value))
                allowedStudies = allowedStudies.map { $0.intersection(found) } ?? found
            } else if key.path[0] == .accessionNumber {
                let found = Set(try await index.studyUIDs(accessionNumber: key.value))
                allowedStudies = allowedStudies.map { $0.intersection(found) } ?? found
            }
        }

        func studyMatches(_ study: StudyRecord) -> Bool {
            guard visible(study), Query.matches(studyKeys, study.attributes) else { return false }
            if !modalityKeys.isEmpty {
                let modalities = Set(study.seriesUIDs.compactMap { catalog.series[$0]?.attributes.string(.modality) })
                let element = DataElement(.modality, .CS, strings: modalities.sorted())
                for key in modalityKeys where !Self.anyValue(key, element) { return false }
            }
            if !sopClassKeys.isEmpty {
                let classes = Set(
                    study.seriesUIDs.flatMap { catalog.series[$0]?.instanceUIDs ?? [] }.compactMap {
                        catalog.instances[$0]?.sopClassUID
                    })
                for key in sopClassKeys
                where !classes.contains(where: { key.value.split(separator: ",").map(String.init).contains($0) }) {
                    return false
                }
            }
            return true
        }
        func seriesMatches(_ series: SeriesRecord) -> Bool { Query.matches(seriesKeys, series.attributes) }
        func instanceMatches(_ instance: InstanceRecord) -> Bool { Query.matches(instanceKeys, instance.attributes) }
        func seriesHasMatchingInstance(_ series: SeriesRecord) -> Bool {
            instanceKeys.isEmpty || series.instanceUIDs.contains { catalog.instances[$0].map(instanceMatches) ?? false }
        }

        var datasets: [Dataset] = []
        switch resource.level {
        case .study:
            var studies = catalog.studies.values.filter { allowedStudies?.contains($0.studyInstanceUID) ?? true }
            studies = studies.filter { study in
                guard studyMatches(study) else { return false }
                if seriesKeys.isEmpty && instanceKeys.isEmpty { return true }
                return study.seriesUIDs.contains { uid in
                    guard let series = catalog.series[uid] else { return false }
                    return seriesMatches(series) && seriesHasMatchingInstance(series)
                }
            }
            studies = Self.sortedStudies(studies)
            let page = try paged(studies, query)
            datasets = page.items.map { studyDataset($0, catalog, query) }
            return Result(datasets: datasets, truncated: page.truncated)
        case .series:
            var found: [SeriesRecord] = []
            for series in catalog.series.values {
                if let study = resource.study, series.studyInstanceUID != study { continue }
                if let allowed = allowedStudies, !allowed.contains(series.studyInstanceUID) { continue }
                guard let study = catalog.studies[series.studyInstanceUID], studyMatches(study) else { continue }
                guard seriesMatches(series), seriesHasMatchingInstance(series) else { continue }
                found.append(series)
            }
            found.sort { Self.seriesOrder($0, $1, catalog) }
            let page = try paged(found, query)
            datasets = page.items.map { series in
                var dataset = seriesDataset(series, catalog, query)
                if resource.study == nil, let study = catalog.studies[series.studyInstanceUID] {
                    dataset.merge(studyDataset(study, catalog, query))
                }
                return dataset
            }
            return Result(datasets: datasets, truncated: page.truncated)
        case .instance:
            var found: [InstanceRecord] = []
            for instance in catalog.instances.values {
                if let study = resource.study, instance.studyInstanceUID != study { continue }
                if let series = resource.series, instance.seriesInstanceUID != series { continue }
                if let allowed = allowedStudies, !allowed.contains(instance.studyInstanceUID) { continue }
                guard let series = catalog.series[instance.seriesInstanceUID], seriesMatches(series),
                    let study = catalog.studies[instance.studyInstanceUID], studyMatches(study),
                    instanceMatches(instance)
                else { continue }
                found.append(instance)
            }
            found.sort { Self.instanceOrder($0, $1, catalog) }
            let page = try paged(found, query)
            datasets = page.items.map { instance in
                var dataset = instanceDataset(instance, query)
                if resource.series == nil, let series = catalog.series[instance.seriesInstanceUID] {
                    dataset.merge(seriesDataset(series, catalog, query))
                }
                if resource.study == nil, let study = catalog.studies[instance.studyInstanceUID] {
                    dataset.merge(studyDataset(study, catalog, query))
                }
                return dataset
            }
            return Result(datasets: datasets, truncated: page.truncated)
        }
    }

    static func anyValue(_ key: QueryKey, _ element: DataElement) -> Bool {
        Query.matches([QueryKey(path: [element.tag], vr: element.vr, value: key.value)], Dataset([element]))
    }

    private func paged<T>(_ items: [T], _ query: Query) throws(ArchiveError) -> (items: [T], truncated: Bool) {
        let limit = min(query.limit ?? maximumResults, maximumResults)
        guard query.offset < items.count else { return ([], false) }
        let end = min(items.count, query.offset + limit)
        return (Array(items[query.offset..<end]), end < items.count)
    }

    // MARK: ordering (stable, so that paging is)

    /// Studies newest first (sort keys computed once).
    static func sortedStudies(_ studies: [StudyRecord]) -> [StudyRecord] {
        let keyed = studies.map {
            ((($0.attributes.string(.studyDate) ?? "") + ($0.attributes.string(.studyTime) ?? "")), $0)
        }
        return keyed.sorted { a, b in
            a.0 != b.0 ? a.0 > b.0 : a.1.studyInstanceUID < b.1.studyInstanceUID
        }.map(\.1)
    }

    static func studyOrder(_ a: StudyRecord, _ b: StudyRecord) -> Bool {
        let keyA = (a.attributes.string(.studyDate) ?? "") + (a.attributes.string(.studyTime) ?? "")
        let keyB = (b.attributes.string(.studyDate) ?? "") + (b.attributes.string(.studyTime) ?? "")
        return keyA != keyB ? keyA > keyB : a.studyInstanceUID < b.studyInstanceUID
    }

    static func seriesOrder(_ a: SeriesRecord, _ b: SeriesRecord, _ catalog: Catalog) -> Bool {
        if a.studyInstanceUID != b.studyInstanceUID, let sa = catalog.studies[a.studyInstanceUID],
            let sb = catalog.studies[b.studyInstanceUID]
        {
            return studyOrder(sa, sb)
        }
        let na = a.attributes.int(.seriesNumber) ?? Int.max
        let nb = b.attributes.int(.seriesNumber) ?? Int.max
        return na != nb ? na < nb : a.seriesInstanceUID < b.seriesInstanceUID
    }

    public static func instanceOrder(_ a: InstanceRecord, _ b: InstanceRecord, _ catalog: Catalog) -> Bool {
        if a.seriesInstanceUID != b.seriesInstanceUID, let sa = catalog.series[a.seriesInstanceUID],
            let sb = catalog.series[b.seriesInstanceUID]
        {
            return seriesOrder(sa, sb, catalog)
        }
        let na = a.attributes.int(.instanceNumber) ?? Int.max
        let nb = b.attributes.int(.instanceNumber) ?? Int.max
        return na != nb ? na < nb : a.sopInstanceUID < b.sopInstanceUID
    }

    // MARK: result datasets

    /// The attributes of `source` a result carries: defaults, `includefield`, the keys used, or all.
    private func pick(_ source: Dataset, defaults: [Tag], level: QueryLevel, _ query: Query) -> Dataset {
        if query.includeAll {
            var all = source
            for tag in defaults where all[tag] == nil && Self.required.contains(tag) {
                all.set(DataElement(tag, TagDictionary.vr(for: tag), strings: []))
            }
            return all
        }
        var wanted = defaults
        wanted += query.includeFields.map { $0[0] }.filter { QueryLevel.of($0) == level }
        wanted += query.keys.map(\.tag).filter { QueryLevel.of($0) == level }
        var result = Dataset()
        for tag in wanted {
            if let element = source[tag] {
                result.set(element)
            } else if Self.required.contains(tag) {
                result.set(DataElement(tag, TagDictionary.vr(for: tag), strings: []))
            }
        }
        if let characterSet = source[.specificCharacterSet] { result.set(characterSet) }
        return result
    }

    func studyDataset(_ study: StudyRecord, _ catalog: Catalog, _ query: Query) -> Dataset {
        var dataset = pick(study.attributes, defaults: Self.studyReturn, level: .study, query)
        // Counted in place: no copy of the study's series and instance records (each answered study used to copy
        // all of them, which dominated searches answering many studies).
        var modalities: [String] = []
        var classes: [String] = []
        var seriesCount = 0
        var instanceCount = 0
        for seriesUID in study.seriesUIDs {
            guard let item = catalog.series[seriesUID] else { continue }
            seriesCount += 1
            if let modality = item.attributes.string(.modality), !modalities.contains(modality) {
                modalities.append(modality)
            }
            for uid in item.instanceUIDs {
                guard let sopClass = catalog.instances[uid]?.sopClassUID else { continue }
                instanceCount += 1
                if !classes.contains(sopClass) { classes.append(sopClass) }
            }
        }
        dataset.set(Self.modalitiesInStudy, .CS, strings: modalities)
        dataset.set(Self.sopClassesInStudy, .UI, strings: classes)
        dataset.set(Self.numberOfStudyRelatedSeries, .IS, String(seriesCount))
        dataset.set(Self.numberOfStudyRelatedInstances, .IS, String(instanceCount))
        dataset.set(Self.instanceAvailability, .CS, "ONLINE")
        dataset.set(Self.retrieveURL, .UR, "\(baseURL)/studies/\(study.studyInstanceUID)")
        dataset.set(.studyInstanceUID, .UI, study.studyInstanceUID)
        return dataset
    }

    func seriesDataset(_ series: SeriesRecord, _ catalog: Catalog, _ query: Query) -> Dataset {
        var dataset = pick(series.attributes, defaults: Self.seriesReturn, level: .series, query)
        dataset.set(Self.numberOfSeriesRelatedInstances, .IS, String(series.instanceUIDs.count))
        dataset.set(
            Self.retrieveURL, .UR, "\(baseURL)/studies/\(series.studyInstanceUID)/series/\(series.seriesInstanceUID)")
        dataset.set(.seriesInstanceUID, .UI, series.seriesInstanceUID)
        return dataset
    }

    func instanceDataset(_ instance: InstanceRecord, _ query: Query) -> Dataset {
        var dataset = pick(instance.attributes, defaults: Self.instanceReturn, level: .instance, query)
        dataset.set(Self.instanceAvailability, .CS, "ONLINE")
        dataset.set(Self.availableTransferSyntaxUID, .UI, instance.transferSyntaxUID)
        dataset.set(
            Self.retrieveURL, .UR,
            "\(baseURL)/studies/\(instance.studyInstanceUID)/series/\(instance.seriesInstanceUID)/instances/\(instance.sopInstanceUID)"
        )
        dataset.set(.sopClassUID, .UI, instance.sopClassUID)
        dataset.set(.sopInstanceUID, .UI, instance.sopInstanceUID)
        return dataset
    }
}

extension Dataset {
    /// Adds the elements of `other` that this dataset does not have.
    mutating func merge(_ other: Dataset) {
        for element in other.elements where self[element.tag] == nil { set(element) }
    }
}
