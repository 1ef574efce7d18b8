import Foundation

/// Cohort's one JSON style, wherever JSON leaves it (the CLI's `--output json`, the API, the
/// event stream, webhooks): times in ISO 8601 UTC with milliseconds (`2026-11-27T06:39:20.123Z`;
/// whole seconds would lose a short task's timeline), keys sorted, slashes unescaped.
/// (The store's own JSON columns keep seconds since 1970: they are not an interface.)
public enum JSONStyle {
    /// A value type: safe to use from every request thread at once.
    public static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public static func time(_ date: Date) -> String { date.formatted(timeFormat) }

    /// An ISO 8601 time with or without fractional seconds, or nil.
    public static func time(_ text: String) -> Date? {
        (try? timeFormat.parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text))
    }

    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(time(date))
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = time(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an ISO 8601 time, found '\(text.prefix(40))'")
            }
            return date
        }
        return decoder
    }
}
