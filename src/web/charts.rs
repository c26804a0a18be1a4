//! Charts drawn on the server as SVG (templates/stats/_charts.html): no script, no CDN,
//! crisp at any size, coloured by the theme's CSS variables, readable without colour
//! (every chart has its table). This module turns numbers into geometry; the templates
//! only place it.

/// One coloured part of a column.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Top of the segment, 0 (top) to 100 (baseline), in viewBox units.
    pub y: f64,
    pub height: f64,
    /// CSS class of the series (`s0`, `s1`, ...).
    pub class: String,
}

/// One column: its segments bottom up, and the tooltip that names its numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub x: f64,
    pub segments: Vec<Segment>,
    pub tip: String,
    /// The peak of the chart, marked.
    pub marked: bool,
}

/// A column chart over `n` columns, stacked by series.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    pub id: String,
    /// viewBox width: one unit per column.
    pub width: usize,
    pub bar_width: f64,
    pub columns: Vec<Column>,
    /// The value at the top of the scale, formatted.
    pub top_label: String,
    /// Series names with their classes, for the legend (empty for one series).
    pub legend: Vec<(String, String)>,
    /// Labels under the axis: the columns in the middle of up to six equal parts of the
    /// axis (the page lays them in as many grid cells, without inline styles).
    pub x_labels: Vec<String>,
}

/// A "nice" top of scale at or above `max`: 1, 2 or 5 times a power of ten.
pub fn nice_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10_f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|t| *t >= max).unwrap_or(max)
}

/// The columns in the middle of `min(n, want)` equal parts of `n` columns.
fn label_positions(n: usize, want: usize) -> Vec<usize> {
    let parts = n.min(want);
    (0..parts).map(|k| ((2 * k + 1) * n / (2 * parts)).min(n - 1)).collect()
}

#[expect(clippy::cast_precision_loss, reason = "chart geometry of small counts")]
/// A stacked column chart: `values[i][s]` is series `s` of column `i`; `labels[i]` names a
/// column; `format` writes a value (the top of the scale and tooltips).
pub fn columns(
    id: &str,
    series: &[&str],
    labels: &[String],
    values: &[Vec<i64>],
    format: impl Fn(i64) -> String,
    marked: Option<usize>,
) -> Columns {
    let totals: Vec<i64> = values.iter().map(|v| v.iter().sum()).collect();
    let top = nice_top(totals.iter().copied().max().unwrap_or(0) as f64);
    let columns = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut base = 100.0;
            let mut segments = Vec::new();
            for (s, &value) in v.iter().enumerate() {
                if value <= 0 {
                    continue;
                }
                let height = value as f64 / top * 100.0;
                base -= height;
                segments.push(Segment { y: base, height, class: format!("s{s}") });
            }
            let parts: Vec<String> = if series.len() > 1 {
                series
                    .iter()
                    .zip(v)
                    .map(|(name, value)| format!("{name} {}", format(*value)))
                    .collect()
            } else {
                vec![format(totals[i])]
            };
            Column {
                x: i as f64,
                segments,
                tip: format!("{}: {}", labels.get(i).map_or("", String::as_str), parts.join(", ")),
                marked: marked == Some(i),
            }
        })
        .collect();
    let n = values.len();
    let x_labels = label_positions(n, 6).into_iter().map(|i| labels[i].clone()).collect();
    Columns {
        id: id.to_owned(),
        width: n.max(1),
        bar_width: if n > 60 { 1.0 } else { 0.8 },
        columns,
        #[expect(clippy::cast_possible_truncation, reason = "a nice number of plays or ms")]
        top_label: format(top as i64),
        legend: if series.len() > 1 {
            series
                .iter()
                .enumerate()
                .map(|(s, name)| ((*name).to_owned(), format!("s{s}")))
                .collect()
        } else {
            Vec::new()
        },
        x_labels,
    }
}

/// A horizontal bar as a share of the biggest, in percent (for CSS widths).
#[expect(clippy::cast_precision_loss, reason = "a width in percent")]
pub fn share(value: i64, max: i64) -> f64 {
    if max <= 0 { 0.0 } else { (value.max(0) as f64 / max as f64 * 1000.0).round() / 10.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_tops() {
        assert!((nice_top(0.0) - 1.0).abs() < 1e-9);
        assert!((nice_top(7.0) - 10.0).abs() < 1e-9);
        assert!((nice_top(11.0) - 20.0).abs() < 1e-9);
        assert!((nice_top(200.0) - 200.0).abs() < 1e-9);
        assert!((nice_top(201.0) - 500.0).abs() < 1e-9);
    }

    #[test]
    fn stacked_columns_scale_to_the_nice_top_and_mark_the_peak() {
        let labels: Vec<String> = ["Mon", "Tue"].map(String::from).to_vec();
        let c = columns(
            "c",
            &["Movies", "Episodes"],
            &labels,
            &[vec![3, 1], vec![0, 8]],
            |v| v.to_string(),
            Some(1),
        );
        assert_eq!(c.top_label, "10");
        assert_eq!(c.columns[0].segments.len(), 2);
        assert!((c.columns[0].segments[0].y - 70.0).abs() < 1e-9, "3 of 10 from the baseline");
        assert!((c.columns[0].segments[1].y - 60.0).abs() < 1e-9, "stacked on top");
        assert_eq!(c.columns[1].segments.len(), 1, "empty parts are not drawn");
        assert_eq!(c.columns[1].segments[0].class, "s1");
        assert!(c.columns[1].marked && !c.columns[0].marked);
        assert_eq!(c.columns[0].tip, "Mon: Movies 3, Episodes 1");
        assert_eq!(c.legend.len(), 2);
        assert_eq!(c.x_labels, ["Mon", "Tue"]);
        assert_eq!(label_positions(24, 6), [2, 6, 10, 14, 18, 22]);
        assert_eq!(label_positions(7, 6), [0, 1, 2, 4, 5, 6]);
        assert!((share(5, 10) - 50.0).abs() < 1e-9);
        assert!(share(1, 0).abs() < 1e-9);
    }
}
