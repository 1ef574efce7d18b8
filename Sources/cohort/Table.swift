/// The CLI's one table printer: rows in aligned columns, two spaces apart, the first row
/// the header; no trailing spaces (rows may be shorter than the header).
func tableText(_ rows: [[String]]) -> String {
    let columns = rows.map(\.count).max() ?? 0
    let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
    }.joined()
}

func printTable(_ rows: [[String]]) { print(tableText(rows), terminator: "") }
