import Foundation

extension ChangeReport {
    /// The change map's full-colour displacement when none is asked for: the 99th percentile of |displacement|,
    /// at least 0.5 mm.
    public var defaultHeatmapScaleMM: Double {
        var magnitudes = vertexDistancesMM.filter(\.isFinite).map(abs).sorted()
        if magnitudes.isEmpty { magnitudes = [1] }
        return max(magnitudes[min(magnitudes.count - 1, Int(Double(magnitudes.count) * 0.99))], 0.5)
    }

    /// The report as `facet compare --json` prints it (and the server's comparison jobs answer it): snake_case keys
    /// in a fixed order, numbers as Swift prints a `Double` (so both give the same digits), null for a number that
    /// is not finite.
    public func json(heatmapScaleMM: Double) -> String {
        func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }
        func object(_ fields: [(String, String)]) -> String {
            "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
        let matrix = transform.matrix.map { "[" + $0.map(number).joined(separator: ",") + "]" }
        let histogram = object([
            ("bin_width_mm", number(self.histogram.binWidthMM)),
            ("lower_mm", number(self.histogram.lowerMM)),
            ("area_mm2", "[" + self.histogram.areasMM2.map(number).joined(separator: ",") + "]"),
        ])
        return object([
            ("volume_change_ml", number(volumeChangeML)),
            ("roi_area_mm2", number(roiAreaMM2)),
            ("mean_displacement_mm", number(meanDisplacementMM)),
            ("max_displacement_mm", number(maxDisplacementMM)),
            ("p95_displacement_mm", number(p95DisplacementMM)),
            ("area_change_mm2", number(areaChangeMM2)),
            ("registration_rms_mm", number(registrationRMSMM)),
            ("transform", "[" + matrix.joined(separator: ",") + "]"),
            // After the leading keys every version has had, in their order.
            (
                "volume_change_ci95_ml",
                "[" + number(volumeChangeCI95ML.lowerBound) + "," + number(volumeChangeCI95ML.upperBound) + "]"
            ),
            (
                "volume_change_sd_ml",
                object([
                    ("registration", number(volumeUncertainty.registrationSDML)),
                    ("noise", number(volumeUncertainty.noiseSDML)),
                    ("method", number(volumeUncertainty.methodSDML)),
                ])
            ),
            ("surface_noise_mm", surfaceNoiseMM.map(number) ?? "null"),
            ("positive_volume_ml", number(positiveVolumeML)),
            ("negative_volume_ml", number(negativeVolumeML)),
            ("uncovered_area_mm2", number(uncoveredAreaMM2)),
            ("enclosed_volume_change_ml", enclosedVolumeChangeML.map(number) ?? "null"),
            ("heatmap_scale_mm", number(heatmapScaleMM)),
            ("histogram", histogram),
        ])
    }
}
